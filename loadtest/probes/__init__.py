"""What a run reads from the stack: CPU over a window, scraped metrics."""
