"""Tenants: who is calling (API keys), what they may call, their quota, weight and priority."""
