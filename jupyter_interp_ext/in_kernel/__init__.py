"""Code that runs inside Python kernels (chart and table data), imported there by the prelude.
Nothing in the server imports it: it must not need anything the server has loaded."""
