"""The wire format every area shares: error bodies, events and their streams, request
validation, timestamps, size limits and MIME names. Nothing here knows an API area."""
