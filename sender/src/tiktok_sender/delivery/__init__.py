"""One `sender push`: the run (`run`), its async workers and the pure policy that turns an answer
into receipts and follow-ups, the receipt sink, the run's state and its progress on stderr."""
