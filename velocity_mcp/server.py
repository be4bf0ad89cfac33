"""The MCP server: tools, the comparison resource and the agent prompts.

:func:`build_server` wires a :class:`~velocity_mcp.service.SweepService` into an
``MCPServer``. Tool parameters carry their descriptions and bounds in the
signature, so the input schema tells an agent what it may ask for; the bounds of
rounds, clients, repeats and parallel are this server's limits.

(No ``from __future__ import annotations`` here: the tool signatures close over
the limits, and the SDK evaluates them with the function's globals.)
"""

import base64
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import (
    ResourceError,
    ResourceNotFoundError,
    ToolError,
    UnexpectedToolError,
)
from mcp.server.mcpserver.prompts import Prompt
from mcp_types import (
    CallToolResult,
    ImageContent,
    InputRequiredResult,
    TextContent,
    ToolAnnotations,
)
from mcp_types import Resource as MCPResource
from pydantic import Field, StrictInt

from velocity.spec import MAX_REPEATS, Device, Partition, RankBy
from velocity.sweepdir import files, names
from velocity_mcp.inputs import OPERATOR_ONLY, check_arguments
from velocity_mcp.launcher import Launcher
from velocity_mcp.limits import Limits
from velocity_mcp.models import (
    SUMMARY_ROWS,
    CancelResult,
    Catalog,
    Detail,
    ExtendStarted,
    SweepList,
    SweepStarted,
    SweepStatus,
    Verdict,
)
from velocity_mcp.paths import sweep_dirs
from velocity_mcp.service import COMPARISON_URI, SweepService, comparison_uri

logger = logging.getLogger(__name__)

#: The Settings fields sweep_run does not accept inline: a path outside the root, and
#: which Ray cluster to use and what to reserve on it (the operator's: $RAY_ADDRESS).
#: Passing one is refused with the reason (velocity_mcp.inputs.OPERATOR_ONLY).
EXCLUDED_SETTINGS = frozenset(OPERATOR_ONLY)
#: The upper bound of an integer setting velocity leaves unbounded (batch_size, ...).
INT_MAX = 2**31 - 1

INSTRUCTIONS = """\
velocity runs federated-learning strategy × attack sweeps and ranks the strategies.
1. list_strategies: the strategies, attacks (with parameters), datasets, models and limits.
2. sweep_run: starts a sweep in the background and returns a sweep_id at once.
3. sweep_status: poll until state is 'done' (a small sweep takes seconds to minutes).
4. sweep_compare: the verdict, recommendation first: the strategy with the best worst-case
   accuracy over no attack and every attack, its binding attack, the price of robustness,
   and whether the data decide it (decided) or it is a tie (tie, repeats_to_separate).
   Recommend recommendation.strategy, never the lowest-loss 'winner' cell. Read the caveats.
sweep_cancel stops a sweep; list_sweeps lists sweeps (including ones made by the CLI).
The prompts 'system' and 'pick-best-strategy' say how to turn a verdict into an answer.
"""

SweepId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1000,
        description="the sweep_id from sweep_run or list_sweeps, or a sweep directory path "
        "under the server's root (the sweep_dir sweep_run returned)",
    ),
]


def _setting(name: str, *, limit: int | None = None, limit_name: str = "") -> Any:
    """A ``Field`` for one Settings field: its description, default and bounds, plus a limit."""
    from velocity.spec import SharedSettings

    field = SharedSettings.model_fields[name]
    bounds: dict[str, Any] = {}
    for meta in field.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            value = getattr(meta, attr, None)
            if value is not None:
                bounds[attr] = value
    description = f"{field.description}; default {field.get_default(call_default_factory=True)!r}"
    kinds = set(getattr(field.annotation, "__args__", ())) | {field.annotation}
    if float in kinds:
        bounds["allow_inf_nan"] = False  # NaN and inf are never a setting
        if "le" not in bounds and "lt" not in bounds:
            bounds["le"] = 1e6
            description += "; at most 1e6"
    elif int in kinds and "le" not in bounds and "lt" not in bounds:
        bounds["le"] = INT_MAX
        description += f"; at most {INT_MAX}"
    if limit is not None:
        bounds.pop("lt", None)
        bounds["le"] = min(limit, bounds.get("le", limit))
        description += (
            f"; at most {bounds['le']} on this server (limit {limit_name}: "
            f"{Limits.flag(limit_name)} / {Limits.env_var(limit_name)})"
        )
    return Field(default=None, description=description, **bounds)


#: One strategy or attack, inline ('Name:key=value,...').
Item = Annotated[str, Field(min_length=1, max_length=500)]


def _params(value: Any) -> dict[str, Any] | None:
    """A validated params model as the dict velocity takes (unset fields left out)."""
    if value is None:
        return None
    return value.model_dump(exclude_none=True) or None


def _prompt_dir() -> Path:
    """The agent prompts: $VELOCITY_MCP_PROMPTS, else the packaged ones (the repo's
    ``agent-prompts/`` is a link to ``velocity_mcp/agent_prompts/``)."""
    env = os.environ.get("VELOCITY_MCP_PROMPTS")
    return Path(env) if env else Path(__file__).resolve().parent / "agent_prompts"


def _add_prompts(server: MCPServer) -> None:
    """Every ``agent-prompts/*.md`` as a prompt named after the file (no arguments)."""
    folder = _prompt_dir()
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        first = next((ln for ln in text.splitlines() if ln.strip()), path.stem)
        description = first.lstrip("#").strip()

        server.add_prompt(
            Prompt.from_function(_constant(text), name=path.stem, description=description)
        )


def _constant(text: str) -> Callable[[], str]:
    """A prompt function without arguments that returns ``text``."""

    def render() -> str:
        return text

    return render


class VelocityMCPServer(MCPServer):
    """MCPServer that also lists each finished sweep's comparison.md as a resource."""

    def __init__(self, service: SweepService, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """Call a tool; every refusal is a ``ToolError`` that says what was wrong.

        Before the SDK validates the arguments (it ignores unknown ones), an unknown
        argument is refused naming it, a close match and the valid ones, and a schema
        violation is reported one clause per problem. A crash in a tool (a bug) still
        reaches the agent with its exception's type and message, not as a bare
        "Error executing tool".
        """
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            names = sorted(t.name for t in self._tool_manager.list_tools())
            raise ToolError(f"unknown tool {name!r}; the tools are: {', '.join(names)}")
        check_arguments(name, tool.fn_metadata.arg_model, arguments)
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:
            cause = exc.__cause__ or exc
            logger.error("tool %s crashed", name, exc_info=cause)
            raise ToolError(
                f"{name} failed unexpectedly ({type(cause).__name__}: {cause}); this is a "
                "bug in the velocity MCP server, its log has the traceback"
            ) from exc
        except ToolError as exc:  # the tool's own message, without the SDK's prefix
            raise ToolError(str(exc).removeprefix(f"Error executing tool {name}: ")) from exc

    async def list_resources(self) -> list[MCPResource]:
        """The static resources plus ``velocity://sweeps/<id>/comparison.md`` per finished sweep."""
        resources = await super().list_resources()
        for path in sweep_dirs(self.service.root):
            if files.has(path, names.COMPARISON_MD):
                resources.append(
                    MCPResource(
                        uri=comparison_uri(path.name),
                        name=f"{path.name} comparison",
                        description=f"ranked verdict of sweep {path.name} ({names.COMPARISON_MD})",
                        mime_type="text/markdown",
                    )
                )
        return resources


def build_server(
    root: Path,
    limits: Limits | None = None,
    *,
    sweep_command: Sequence[str] | None = None,
    start_wait_s: float = 10.0,
    cancel_wait_s: float = 20.0,
) -> VelocityMCPServer:
    """The velocity MCP server over ``root``.

    Parameters
    ----------
    root : Path
        Directory of the sweep directories; every agent path is resolved inside it.
    limits : Limits, optional
        Defaults to :meth:`Limits.from_env`.
    sweep_command : sequence of str, optional
        Replaces ``python -m velocity sweep`` (tests use a fake sweep).
    start_wait_s, cancel_wait_s : float
        See :class:`~velocity_mcp.service.SweepService`.
    """
    limits = limits or Limits.from_env()
    root = Path(root).resolve()
    service = SweepService(
        root,
        limits,
        Launcher(root, sweep_command),
        start_wait_s=start_wait_s,
        cancel_wait_s=cancel_wait_s,
    )
    from velocity import __version__

    server = VelocityMCPServer(
        service,
        name="velocity",
        title="velocity: federated-learning strategy × attack sweeps",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    DatasetParams = service.dataset_params_model  # noqa: N806 (a class)
    ModelParams = service.model_params_model  # noqa: N806

    @server.tool(annotations=read_only)
    def list_strategies() -> Catalog:
        """Every aggregation strategy and attack with its parameters (type, default, allowed
        range, description), the datasets and models, and this server's limits.

        Write a strategy or attack with parameters inline as 'Name:key=value,key=value'
        (e.g. 'Krum:f=2', 'gaussian_noise:sigma=10,fraction=0.2'); unlisted parameters
        take their defaults.
        """
        return service.catalog()

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False))
    def sweep_run(
        strategies: Annotated[
            list[Item],
            Field(
                default_factory=list,
                max_length=limits.max_runs,
                description="strategies to compare, each 'Name' or 'Name:key=value,...', e.g. "
                "['FedAvg', 'FedMedian', 'Krum:f=1'], or a pipeline of pre-aggregators and a "
                "rule joined by '>', e.g. 'NNM>Krum' (for heterogeneous data). Each runs once "
                "with no attack (its baseline) and once under each attack. Omit when using "
                "config.",
            ),
        ],
        attacks: Annotated[
            list[Item],
            Field(
                default_factory=list,
                max_length=limits.max_runs,
                description="attacks, each 'name' or 'name:key=value,...', e.g. "
                "['gaussian_noise:sigma=10,fraction=0.2', 'label_flipping']; each is a separate "
                "column of the matrix. 'adaptive' stands for every adaptive attack (those "
                "that optimise against the strategy; list_strategies marks them), one column "
                "each; 'none' is the no-attack column, always run. Empty: baselines only.",
            ),
        ],
        config: Annotated[
            str | None,
            Field(
                default=None,
                max_length=1000,
                description="instead of strategies/attacks: an experiment file (.toml or "
                ".json, [shared] + [[runs]]) as a path relative to the server's root. Settings "
                "given here override its [shared] table.",
            ),
        ],
        rounds: Annotated[
            int | None, _setting("rounds", limit=limits.max_rounds, limit_name="max_rounds")
        ],
        clients: Annotated[
            int | None,
            _setting("clients", limit=limits.max_clients, limit_name="max_clients"),
        ],
        repeats: Annotated[
            int | None, _setting("repeats", limit=limits.max_runs, limit_name="max_runs")
        ],
        seed: Annotated[int | None, _setting("seed")],
        dataset: Annotated[str | None, _setting("dataset"), Field(max_length=500)],
        dataset_params: Annotated[
            DatasetParams | None,  # type: ignore[valid-type]
            Field(
                default=None,
                description="dataset options: synthetic takes n_samples, n_features, "
                "n_classes, class_sep; a Hugging Face dataset config, label_column, "
                "feature_column; digits none (bounds below)",
            ),
        ],
        model_id: Annotated[str | None, _setting("model_id"), Field(max_length=100)],
        model_params: Annotated[
            ModelParams | None,  # type: ignore[valid-type]
            Field(default=None, description="model options: mlp takes hidden, e.g. {'hidden': 32}"),
        ],
        partition: Annotated[Partition | None, _setting("partition")],
        alpha: Annotated[float | None, _setting("alpha")],
        shards_per_client: Annotated[int | None, _setting("shards_per_client")],
        samples_per_client: Annotated[int | None, _setting("samples_per_client")],
        test_fraction: Annotated[float | None, _setting("test_fraction")],
        fraction_fit: Annotated[float | None, _setting("fraction_fit")],
        byzantine: Annotated[
            Annotated[StrictInt, Field(ge=1, le=max(1, limits.max_clients - 1))]
            | Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
            | None,
            Field(
                default=None,
                description="Byzantine clients, once for the whole sweep: a fraction of all "
                "clients in (0, 1) (0.2) or an integer count (2). Every attack without its "
                "own fraction/count takes it, and every strategy's tolerance not given "
                "(Krum f, TrimmedMean beta = f/n, NNM f, ...) is set to the expected "
                "Byzantine clients per round, round(byzantine × clients per round). With "
                "it, a config run with several attacks must give each its own share. "
                "Unset: each attack's own default (fraction 0.2), the strategies' defaults.",
            ),
        ],
        local_epochs: Annotated[int | None, _setting("local_epochs")],
        local_steps: Annotated[int | None, _setting("local_steps")],
        momentum: Annotated[float | None, _setting("momentum")],
        device: Annotated[Device | None, _setting("device")],
        batch_size: Annotated[int | None, _setting("batch_size")],
        lr: Annotated[float | None, _setting("lr")],
        checkpoint_every: Annotated[int | None, _setting("checkpoint_every")],
        parallel: Annotated[
            int | None,
            _setting("parallel", limit=limits.max_parallel, limit_name="max_parallel"),
        ],
        until: Annotated[
            Literal["decided"] | None,
            Field(
                default=None,
                description="'decided': instead of guessing repeats, run one repeat of every "
                "cell, then add repeats (paired seeds) only for the strategies still in the "
                "running — a strategy already separated from the leader beyond 2·SE gets no "
                "more — until the recommendation is decided, max_repeats or budget; the verdict "
                "says which ended it. Do not give repeats with it. Unset: exactly `repeats`.",
            ),
        ],
        max_repeats: Annotated[
            int | None,
            _setting("max_repeats", limit=limits.max_runs, limit_name="max_runs"),
        ],
        budget: Annotated[
            int | None, _setting("budget", limit=limits.max_runs, limit_name="max_runs")
        ],
        rank_by: Annotated[
            RankBy | None,
            Field(
                default=None,
                description="what the verdict ranks by: 'accuracy' (final test accuracy; the "
                "default) or 'loss' (final test loss). Unset: the config's [shared] rank_by, "
                "else 'accuracy'.",
            ),
        ],
        backend: Annotated[
            Literal["local", "ray"] | None,
            Field(
                default=None,
                description="where runs execute: 'local' processes on the server's machine, or "
                "'ray' (the Ray cluster in $RAY_ADDRESS, else a Ray instance started for the "
                "sweep; needs velocity-fl[ray]). Results are identical. Default: the config's "
                "[shared] backend, else 'local'.",
            ),
        ],
    ) -> SweepStarted:
        """Start a strategy × attack sweep in the background; returns at once with a sweep_id.

        The matrix is every strategy with no attack plus every strategy under each attack:
        runs = len(strategies) × (1 + len(attacks)) × repeats. Runs of one repeat share the
        data split, model init and Byzantine clients, so differences come from the strategy.
        Everything is validated before any run starts (unknown names and arguments get a
        suggestion); the dataset, model and each strategy's client precondition are checked
        by the sweep process, whose refusal is this call's error. Then poll sweep_status
        until state is 'done' and call sweep_compare.
        """
        settings = {
            "rounds": rounds,
            "clients": clients,
            "repeats": repeats,
            "seed": seed,
            "dataset": dataset,
            "dataset_params": _params(dataset_params),
            "model_id": model_id,
            "model_params": _params(model_params),
            "partition": partition,
            "alpha": alpha,
            "shards_per_client": shards_per_client,
            "samples_per_client": samples_per_client,
            "test_fraction": test_fraction,
            "fraction_fit": fraction_fit,
            "byzantine": byzantine,
            "local_epochs": local_epochs,
            "local_steps": local_steps,
            "momentum": momentum,
            "device": device,
            "batch_size": batch_size,
            "lr": lr,
            "checkpoint_every": checkpoint_every,
            "parallel": parallel,
            "backend": backend,
            "rank_by": rank_by,
            "until": until,
            "max_repeats": max_repeats,
            "budget": budget,
        }
        return service.run(strategies=strategies, attacks=attacks, config=config, settings=settings)

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False))
    def sweep_extend(
        sweep_id: SweepId,
        repeats: Annotated[
            int | None,
            Field(
                default=None,
                ge=1,
                le=min(MAX_REPEATS, limits.max_runs),
                description="repeats per cell the sweep should have (more than it has): the "
                "new repeats run with the next seeds, paired across strategies",
            ),
        ],
        strategies: Annotated[
            list[Item],
            Field(
                default_factory=list,
                max_length=limits.max_runs,
                description="strategies to add, each run in every condition (no attack and "
                "each attack) of the sweep, e.g. ['Bulyan']",
            ),
        ],
        attacks: Annotated[
            list[Item],
            Field(
                default_factory=list,
                max_length=limits.max_runs,
                description="attacks to add, each run against every strategy of the sweep",
            ),
        ],
    ) -> ExtendStarted:
        """Add runs to an existing sweep instead of starting a new one: to answer a follow-up
        ("and with Bulyan?", "and under ALIE?", "with more seeds?"). The sweep's settings
        stay (new cells are comparable with the old, paired by seed); finished runs are
        never rerun. A running sweep gets the runs queued (its driver runs them when its
        current runs are done); an ended one runs them now. Then poll sweep_status and call
        sweep_compare: the verdict covers the old and the new runs.
        """
        return service.extend(sweep_id, repeats=repeats, strategies=strategies, attacks=attacks)

    @server.tool(annotations=read_only)
    def sweep_status(sweep_id: SweepId) -> SweepStatus:
        """Where a sweep stands: state (starting, running, done, failed, cancelled,
        interrupted), runs done, diverged and failed of total, the current round of each
        running run, elapsed seconds and the failed runs' errors. A diverged run (non-finite
        values: the strategy broke) is a result, not an error. Poll every few seconds while
        state is starting or running.
        """
        return service.status(sweep_id)

    @server.tool(annotations=read_only)
    def sweep_compare(
        sweep_id: SweepId,
        detail: Annotated[
            Detail,
            Field(
                default="summary",
                description="'summary': the recommendation (without each candidate's "
                "per-condition results), the best strategy under each attack, caveats, the "
                f"header and the top {SUMMARY_ROWS} cells; 'full': everything in "
                f"{names.COMPARISON} (every cell, per-condition results, the lowest-loss winner "
                "line, failed, diverged and not-run runs)",
            ),
        ],
        include_heatmap: Annotated[
            bool,
            Field(
                default=False,
                description="also return the robustness heatmap (PNG image content): final "
                "accuracy per strategy × attack and loss increase over each strategy's "
                "baseline, best and most robust marked",
            ),
        ],
    ) -> Annotated[CallToolResult, Verdict]:
        """The verdict of a finished sweep (its comparison.json), recommendation first: the
        strategy whose worst-case accuracy over no attack and every attack is best, paired by
        seed, with its binding attack, its price of robustness (clean accuracy given up), a
        noise test (decided, or a tie with the repeats likely to separate it) and a reason
        sentence to quote; then the best strategy under each attack, caveats to read before
        trusting it, the setting (header.setting) and the top cells. A cancelled sweep gets a
        partial verdict; a running one an error telling you to poll. With include_heatmap,
        the robustness heatmap comes as an image beside the verdict.
        """
        verdict = service.compare(sweep_id, detail)
        image = None
        if include_heatmap:
            image, missing = service.heatmap(verdict)
            if missing:
                verdict = verdict.model_copy(update={"caveats": [*verdict.caveats, missing]})
        # exclude_unset: the fields the summary leaves out are absent, not null
        structured = verdict.model_dump(mode="json", by_alias=True, exclude_unset=True)
        content: list[TextContent | ImageContent] = [
            TextContent(type="text", text=json.dumps(structured, indent=2, ensure_ascii=False))
        ]
        if image is not None:
            data = base64.b64encode(image).decode("ascii")
            content.append(ImageContent(type="image", data=data, mime_type="image/png"))
        return CallToolResult(content=content, structured_content=structured)

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
    def sweep_cancel(sweep_id: SweepId) -> CancelResult:
        """Stop a running sweep (SIGTERM). Finished runs are kept and sweep_compare gives a
        partial verdict over them. Cancelling a finished sweep does nothing.
        """
        return service.cancel(sweep_id)

    @server.tool(annotations=read_only)
    def list_sweeps() -> SweepList:
        """Every sweep under the server's root, oldest first, with its state and whether its
        comparison is ready (sweeps started from the velocity CLI under the root included).
        """
        return service.sweeps()

    @server.resource(
        COMPARISON_URI,
        name="sweep comparison",
        description=f"a finished sweep's {names.COMPARISON_MD}: header, ranked table, verdicts, "
        "caveats",
        mime_type="text/markdown",
    )
    def comparison_md(sweep_id: str) -> str:
        try:
            return service.comparison_markdown(sweep_id)
        except ToolError as exc:
            text = str(exc)
            if any(w in text for w in ("no sweep", "escapes", "outside", "path component")):
                raise ResourceNotFoundError(text) from None
            raise ResourceError(text) from None
        except Exception as exc:  # a bug: still say what happened
            logger.error("reading the comparison of %r crashed", sweep_id, exc_info=True)
            raise ResourceError(
                f"cannot read the comparison of sweep {sweep_id!r}: {type(exc).__name__}: {exc}"
            ) from None

    _add_prompts(server)
    return server
