"""Chart and table data can be turned off, and cost nothing to code that never plots."""

from __future__ import annotations

import pytest

from jupyter_interp_ext.pytest_plugin import outputs, results

pytestmark = pytest.mark.slow  # every test here takes seconds


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_interp_ext": True}},
        "KernelPool": {"sizes": {}},
        "CodeContextRegistry": {"chart_data": False, "table_max_rows": 0},
    }


async def test_turned_off_results_carry_only_their_usual_formats(api):
    context = (await api.create("python"))["contextId"]
    events = await api.run(
        context,
        "import matplotlib.pyplot as plt, pandas as pd\n"
        "plt.plot([1, 2]); plt.show()\n"
        "pd.DataFrame({'a': [1]})",
    )
    figure, frame = results(events)
    assert "png" in figure and "chart" not in figure
    assert "html" in frame and "data" not in frame


async def test_a_kernel_that_never_plots_never_loads_the_plotting_stack(api, jp_serverapp):
    registry = jp_serverapp.web_app.settings["interp_context_registry"]
    registry.chart_data, registry.table_max_rows = True, 1000
    context = (await api.create("python"))["contextId"]
    heavy = "{'matplotlib', 'pandas', 'e2b_charts', 'pydantic'}"
    events = await api.run(context, f"1 + 1\nimport sys\nprint(sorted({heavy} & set(sys.modules)))")
    assert outputs(events, "stdout") == "[]\n"
    plotted = await api.run(context, "import matplotlib.pyplot as plt\nplt.plot([1]); plt.show()")
    [figure] = results(plotted)
    assert figure["chart"]["type"] == "line"  # and it is on, once plotting starts
