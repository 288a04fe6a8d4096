"""The shared language of the exchange: event contracts, one module per owning department (every one of
them: ``contracts.catalogue``). No I/O."""
