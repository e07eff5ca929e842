"""What a person watching Tidings sees: Prometheus metrics (`metrics.py`, served by `exposition.py`) and
the log's format (`logs.py`: text or one JSON object per line, with the request id)."""
