"""Fakes shared by every test: one fake pod client, one hand-moved clock."""
