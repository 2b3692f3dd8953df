"""A sandbox's life as E2B's SDK gives it (create, run, files, pause, connect, kill), unchanged
but for its import line.

With E2B it reads `from e2b_code_interpreter import Sandbox`; here, given JUPYTERHUB_URL and
JUPYTERHUB_API_TOKEN, each sandbox is a named server of a JupyterHub user (deploy/ has the
Hub's configuration), paused and resumed as E2B's are: its files stay, its kernels are new.
"""

from jupyter_interp_ext.client import Sandbox


def main() -> None:
    sandbox = Sandbox.create()
    print("created:", sandbox.sandbox_id)
    print("result:", sandbox.run_code("sum(range(10))").text)
    sandbox.files.write("state.txt", "survives a pause")
    print("paused:", sandbox.pause())

    same = Sandbox.connect(sandbox.sandbox_id)
    print("file after resume:", same.files.read("state.txt"))
    print("result after resume:", same.run_code("6 * 7").text)
    print("killed:", same.kill())


if __name__ == "__main__":
    main()
