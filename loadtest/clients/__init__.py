"""Load-generator clients, one interface over every wire, and the request they send."""
