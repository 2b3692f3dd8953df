"""An agent's script written for E2B's code interpreter SDK, unchanged but for its import line.

With E2B it reads `from e2b_code_interpreter import CommandExitException, Sandbox` and its
sandbox runs in E2B's cloud; here the same code runs against a Jupyter server with this
extension, found through JUPYTER_SERVER_URL and JUPYTER_TOKEN. (Paths are relative: a Jupyter
server's files are its root, not E2B's /home/user.)
"""

from jupyter_interp_ext.client import CommandExitException, Sandbox


def main() -> None:
    sandbox = Sandbox.create(envs={"PROJECT": "demo"})
    try:
        execution = sandbox.run_code(
            "import os\nprint(os.environ['PROJECT'], os.environ['RUN'])\nanswer = 41\nanswer + 1",
            on_stdout=lambda message: print("stdout:", message.line, end=""),
            envs={"RUN": "first"},
        )
        print("result:", execution.text)

        figure = sandbox.run_code(
            "import matplotlib.pyplot as plt\n"
            "plt.bar(['apples', 'pears'], [3, 5])\nplt.title('fruit')\nplt.show()"
        )
        chart = figure.results[0].chart
        print("chart:", chart.type.value, chart.title, [bar.value for bar in chart.elements])

        frame = sandbox.run_code(
            "import pandas as pd\npd.DataFrame({'n': [1, 2], 's': list('ab')})"
        )
        print("dataframe:", frame.results[0].data)

        sandbox.files.write("notes.txt", "written by the agent")
        print("file:", sandbox.files.read("notes.txt"))
        print("listed:", "notes.txt" in [entry.name for entry in sandbox.files.list(".")])

        try:
            sandbox.commands.run("ls does-not-exist")
        except CommandExitException as failed:
            print("command failed:", failed.exit_code)
    finally:
        sandbox.kill()


if __name__ == "__main__":
    main()
