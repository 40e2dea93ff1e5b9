"""The tables the sender reads and writes, as columns and types: the outbox (`outbox`), the receipts
and runs (`receipts`). Imports nothing else of the package; every other part may import it."""
