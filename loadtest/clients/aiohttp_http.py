"""The HTTP load-generator client (KServe v2 REST, JSON or the binary tensor extension)."""

from __future__ import annotations

import asyncio

import aiohttp

from loadtest.clients.base import ClientSpec, InferError, SampledClient
from protos.v2_http import HEADER_LENGTH, decode_response, encode_request

__all__ = ["HttpClient"]


class HttpClient(SampledClient):
    """POSTs one pre-encoded request body over a keep-alive connection pool.

    With ``binary`` the input goes as binary data and every output is asked for as binary;
    otherwise both ways are JSON.
    """

    def __init__(self, spec: ClientSpec, *, binary: bool) -> None:
        super().__init__(spec)
        payload = spec.payload
        self._url = f"{spec.target.rstrip('/')}/v2/models/{payload.model}/infer"
        body, header_length = encode_request(payload.request(binary_output=binary), binary)
        self._body = body
        self._headers = {"Content-Type": "application/json"}
        if header_length is not None:
            self._headers["Content-Type"] = "application/octet-stream"
            self._headers[HEADER_LENGTH] = str(header_length)
        self._headers.update(spec.headers)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(total=spec.timeout_s),
        )

    async def infer(self) -> None:
        check = self._sampler.due()
        try:
            async with self._session.post(self._url, data=self._body, headers=self._headers) as r:
                body = await r.read()
                status = r.status
                header_length = r.headers.get(HEADER_LENGTH)
        except aiohttp.ClientError as exc:
            raise InferError(f"http {type(exc).__name__}", str(exc)) from exc
        except TimeoutError as exc:
            raise InferError("timeout") from exc
        if status != 200:
            raise InferError(f"http {status}", body[:200].decode("utf-8", "replace"))
        if check:
            length = None if header_length is None else int(header_length)
            self._verify(decode_response(body, length))

    async def aclose(self) -> None:
        await self._session.close()
        await asyncio.sleep(0)  # let the connector close its transports
