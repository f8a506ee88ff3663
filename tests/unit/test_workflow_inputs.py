"""No GitHub workflow pastes an expression into a shell script: inputs, event fields and
matrix values reach `run:` only through `env:` as quoted variables (an expression inside
`run:` is substituted into the script text before the shell parses it)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def run_blocks(text: str) -> list[str]:
    """The script text of every `run:` key (inline or block scalar), by indentation."""
    blocks: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.lstrip(" -")
        if not stripped.startswith("run:"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = [stripped[len("run:") :]]
        for follow in lines[i + 1 :]:
            if follow.strip() and len(follow) - len(follow.lstrip(" ")) <= indent:
                break
            body.append(follow)
        blocks.append("\n".join(body))
    return blocks


def test_run_blocks_reads_inline_and_folded_scripts() -> None:
    text = (
        "steps:\n  - run: echo a\n  - name: x\n    run: >\n      echo ${{ inputs.b }}\n"
        "      more\n    env:\n      C: d\n"
    )
    assert run_blocks(text) == [" echo a", " >\n      echo ${{ inputs.b }}\n      more"]


def test_no_workflow_interpolates_an_expression_into_a_run_script() -> None:
    assert WORKFLOWS, "no workflow files"
    found = [
        f"{path.name}: {block.strip()[:120]}"
        for path in WORKFLOWS
        for block in run_blocks(path.read_text())
        if "${{ inputs." in block or "${{ github.event." in block or "${{" in block
    ]
    assert not found, 'pass these through env: and quote "$VAR":\n' + "\n".join(found)
