"""Chat-id store backends; `open_store(url)` picks one by URL scheme."""
