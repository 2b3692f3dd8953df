"""Code contexts: kernels of the server's kernel manager, the runs in them and their outputs,
the languages that run them, the pool of pre-started kernels and Gateway kernels."""
