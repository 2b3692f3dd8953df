"""Bash contexts (bash_kernel, from the `bash` extra): `language="bash"` as E2B has it."""

from __future__ import annotations

import pytest

from jupyter_interp_ext.pytest_plugin import outputs

pytestmark = pytest.mark.slow  # every test here starts kernels


async def test_a_bash_context_in_its_directory_with_its_environment(api, jp_root_dir):
    (jp_root_dir / "work").mkdir()
    created = await api.create("bash", cwd="work", env_vars={"GREETING": "hi"})
    assert created["language"] == "bash"
    context_id = created["contextId"]
    events = await api.run(context_id, "echo $((6 * 7)); pwd; echo $GREETING")
    assert events[-1]["type"] == "execution_complete"
    assert outputs(events, "stdout") == f"42\n{(jp_root_dir / 'work').resolve()}\nhi\n"
    await api.run(context_id, "KEPT=yes")
    assert outputs(await api.run(context_id, "echo $KEPT"), "stdout") == "yes\n"
    # Variables for one run only, put back after it.
    once = await api.run(context_id, "echo $GREETING", env_vars={"GREETING": "once"})
    assert outputs(once, "stdout") == "once\n"
    assert outputs(await api.run(context_id, "echo $GREETING"), "stdout") == "hi\n"
    # `sh` and `shell` name it too.
    assert (await api.create("sh"))["language"] == "bash"
