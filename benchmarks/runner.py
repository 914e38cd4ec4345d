"""Command line: ``python -m benchmarks [--smoke | --quick] [--cases ...] [--dtype ...] [--out DIR]``."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import os
import time
from pathlib import Path

from . import cases as _cases
from . import report
from .cases import Config, Recorder

MODES = {
    # The smallest sizes (n ≤ 64 for exact GPs; SVGP minibatches of 64 from 1000 points), one
    # repeat: exercises every code path (predict_memory: more test points than one block).
    "smoke": dict(
        gram_kernels=("rbf", "sum3"),
        gram_n=(64,),
        gram_d=(1, 8),
        mll_n=(64,),
        fit_n=(64,),
        fit_steps=5,
        ours_restarts=2,
        sklearn_restarts=1,
        predict_n=64,
        predict_m=(64, 256),
        batch_size=4,
        batch_n=16,
        batch_adam_steps=5,
        compile_n=32,
        repeats=1,
        budget_s=0.2,
        fit_budget_s=20.0,
        predict_budget_s=5.0,
        single_above_s=5.0,
        svgp_n=(1000,),
        svgp_m=(8,),
        svgp_batch_size=64,
        svgp_timed_steps=((8, 5),),
        svgp_target_steps=((8, 5),),
        svgp_peer_n=(1000,),
        sgpr_n=(200,),
        sgpr_m=(16,),
        sgpr_steps=5,
        sgpr_n_test=100,
        exact_fit_n=100,
        exact_max_n=200,
        laplace_n=(40,),
        predict_memory_n=200,
        predict_memory_m=(10_000,),
        state_space_n=(100,),
    ),
    # Every case at moderate sizes.
    "quick": dict(
        gram_n=(500, 1000),
        gram_d=(1, 8),
        mll_n=(500, 1000),
        fit_n=(500,),
        fit_steps=100,
        predict_n=1000,
        predict_m=(1000, 10_000),
        batch_size=128,
        batch_n=64,
        batch_adam_steps=50,
        compile_n=500,
        repeats=3,
        budget_s=1.5,
        fit_budget_s=60.0,
        predict_budget_s=20.0,
        single_above_s=10.0,
        svgp_m=(64, 256),
        svgp_batch_size=512,
        svgp_timed_steps=((64, 50), (256, 20)),
        svgp_target_steps=((64, 600),),
        sgpr_n=(2_000, 5_000),
        sgpr_m=(128,),
        sgpr_n_test=2_000,
        exact_fit_n=1_000,
        laplace_n=(200, 500),
        predict_memory_m=(100_000,),
        state_space_n=(1_000, 10_000, 100_000),
    ),
    # The grid (n = 8000 Gram rows on accelerators only).
    "full": dict(),
}
#: Fit budget (s) of the float32 pass when both dtypes run.
FLOAT32_FIT_BUDGET_S = 100.0
CASE_ALIASES = {
    "mll_grad": "mll",
    "batched_mll_grad": "batched",
    "batched_fit": "batched",
    "prediction": "predict",
}
SMOKE_PEERS = ("sklearn",)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="moderate sizes")
    mode.add_argument(
        "--smoke", action="store_true", help="tiny sizes, one repeat: every code path"
    )
    p.add_argument(
        "--cases",
        default=",".join(_cases.DEFAULT_CASES),
        help=f"comma-separated subset of: {', '.join(_cases.CASES)}; 'sparse' stands for "
        f"svgp,sgpr and 'all' for every case (default: {','.join(_cases.DEFAULT_CASES)})",
    )
    p.add_argument(
        "--dtype",
        default="float64",
        help="float64, float32 or both comma-separated (float32 disables jax_enable_x64)",
    )
    p.add_argument(
        "--out", default=None, help="output folder (default benchmarks/results/<backend>-<date>)"
    )
    p.add_argument(
        "--peers",
        default=None,
        help="comma-separated peers (tinygp,gpjax,sklearn,gpytorch), 'none', or 'all' "
        "(default: all installed; --smoke: sklearn)",
    )
    p.add_argument("--repeats", type=int, default=None, help="timed repeats after the first call")
    p.add_argument("--budget", type=float, default=None, help="seconds of repeats per measurement")
    p.add_argument("--fit-steps", type=int, default=None, help="Adam steps in the fit case")
    p.add_argument(
        "--fit-budget",
        type=float,
        default=None,
        help="skip a peer's fit when projected above this many seconds",
    )
    p.add_argument(
        "--exact-max-n",
        type=int,
        default=None,
        help="sgpr case: largest n at which the exact GP is conditioned on all points "
        "(e.g. 20000; default 5000)",
    )
    p.add_argument(
        "--svgp-target",
        type=float,
        default=None,
        help="svgp case: target EMA of the minibatch -ELBO/n, nats per point (default 0)",
    )
    p.add_argument(
        "--skip-n", default="", help="comma-separated n values to drop from every case (e.g. 4000)"
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin BLAS/XLA to one thread on CPU")
    p.add_argument(
        "--timeout",
        type=float,
        default=0,
        help="abort (dumping every thread's stack) after this many seconds; results written so far stay",
    )
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--publish",
        metavar="RUN_DIR",
        default=None,
        help="run nothing: copy RUN_DIR/results.md to benchmarks/results/latest.md "
        "(the table README and docs show), with its plots linked",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    return p.parse_args(argv)


def make_config(args, on_accelerator: bool) -> Config:
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    cfg = Config(mode=mode, on_accelerator=on_accelerator, **MODES[mode])
    if mode == "full" and on_accelerator:
        cfg.gram_n = (*cfg.gram_n, 8000)
    if args.repeats is not None:
        cfg.repeats = args.repeats
    if args.budget is not None:
        cfg.budget_s = args.budget
    if args.fit_steps is not None:
        cfg.fit_steps = args.fit_steps
    if args.fit_budget is not None:
        cfg.fit_budget_s = args.fit_budget
    if args.exact_max_n is not None:
        cfg.exact_max_n = args.exact_max_n
    if args.svgp_target is not None:
        cfg.svgp_target = args.svgp_target
    skip = {int(s) for s in args.skip_n.split(",") if s.strip()}
    if skip:
        for field in ("gram_n", "mll_n", "fit_n", "svgp_n", "sgpr_n", "laplace_n", "state_space_n"):
            setattr(cfg, field, tuple(n for n in getattr(cfg, field) if n not in skip))
    return cfg


def select_cases(spec: str):
    names = []
    for given in (s.strip() for s in spec.split(",") if s.strip()):
        for name in _cases.CASE_GROUPS.get(given, (CASE_ALIASES.get(given, given),)):
            if name not in _cases.CASES:
                choices = ", ".join([*_cases.CASES, *_cases.CASE_GROUPS])
                raise SystemExit(f"unknown case {name!r}; choose from {choices}")
            if name not in names:
                names.append(name)
    return names


def select_peers(args):
    from .peers import ALL_PEERS, load_peers

    known = [cls.name for cls in ALL_PEERS]
    spec = args.peers
    if spec is None:
        spec = ",".join(SMOKE_PEERS) if args.smoke else "all"
    if spec == "none":
        return []
    names = known if spec == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    unknown = set(names) - set(known)
    if unknown:
        raise SystemExit(f"unknown peers {sorted(unknown)}; choose from {', '.join(known)}")
    return load_peers(names)


def main(argv=None, pin_record=None) -> int:
    args = parse_args(argv or [])
    if args.publish:
        root = Path(__file__).parent
        latest = report.publish(
            Path(args.publish),
            root / "results" / "latest.md",
            docs_plot=root.parent / "docs" / "images" / "benchmark_mll_grad.png",
        )
        print(f"wrote {latest}")
        return 0
    started = time.perf_counter()
    if args.timeout > 0:
        import faulthandler

        faulthandler.dump_traceback_later(args.timeout, exit=True)
    import jax

    from .machine import Floors, describe_backend

    backend = describe_backend(pin_record)
    on_accel = backend["backend"] != "cpu"
    cfg = make_config(args, on_accel)
    case_names = select_cases(args.cases)
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    for d in dtypes:
        if d not in ("float32", "float64"):
            raise SystemExit(f"--dtype must be float32 or float64, got {d!r}")
    date = _dt.date.today().isoformat()
    out = (
        Path(args.out)
        if args.out
        else Path(__file__).parent / "results" / f"{backend['backend']}-{date}"
    )
    out.mkdir(parents=True, exist_ok=True)

    peers = select_peers(args)
    available = [p for p in peers if p.module is not None]
    notes = []
    if backend["pinning"].get("pinned"):
        notes.append(
            "CPU run: BLAS and XLA:CPU pinned to one thread by the harness "
            f"(XLA_FLAGS={os.environ.get('XLA_FLAGS')!r})."
        )
    if not on_accel:
        notes.append(
            "No GPU/TPU in this run: accelerator rows (e.g. Gram at n = 8000) are left to a run on one."
        )
    if not args.quiet:
        print(
            f"backend {backend['backend']} ({backend['device_kind']}), JAX {backend['jax']}, "
            f"pinned={backend['pinning'].get('pinned')}, mode {cfg.mode}, cases {case_names}, dtypes {dtypes}"
        )
        for p in peers:
            print(
                f"  peer {p.name}: "
                + (f"{p.version}" if p.module is not None else f"not available ({p.error})")
            )

    rows, machine, targets = [], {}, {}

    def write_all(all_rows, machine, targets, final):
        try:
            load_end = list(os.getloadavg())
        except OSError:  # pragma: no cover
            load_end = None
        results = {
            "meta": {
                "date": date,
                "mode": cfg.mode,
                "complete": final,
                "cases": case_names,
                "dtypes": dtypes,
                "config": dataclasses.asdict(cfg),
                "backend": backend,
                "peers": [
                    {
                        "name": p.name,
                        "available": p.module is not None,
                        "version": p.version,
                        "error": p.error,
                    }
                    for p in peers
                ],
                "load_average_end": load_end,
                "wall_s": time.perf_counter() - started,
                "notes": notes,
                "command": "python -m benchmarks " + " ".join(argv or []),
            },
            "machine": machine,
            "targets": targets,
            "rows": all_rows,
        }
        report.write_json(out / "results.json", results)
        (out / "results.md").write_text(report.markdown(results))
        return results

    for dtype in dtypes:
        jax.config.update("jax_enable_x64", dtype == "float64")
        cfg_d = dataclasses.replace(cfg, dtype=dtype)
        if dtype == "float32" and len(dtypes) > 1:
            # scikit-learn fits in float64 only: float32 fits are the secondary
            # comparison, kept to the smaller budget.
            cfg_d.fit_budget_s = min(cfg.fit_budget_s, FLOAT32_FIT_BUDGET_S)
        floors = Floors(dtype, repeats=max(cfg.repeats, 1), budget_s=cfg.budget_s)
        rec = Recorder(dtype, verbose=not args.quiet)
        for name in case_names:
            case_peers = available
            if dtype == "float32" and name != "gram" and not args.quiet:
                print(f"note: running case {name} in float32")
            t0 = time.perf_counter()
            try:
                _cases.CASES[name](cfg_d, rec, floors, case_peers)
            except Exception as exc:  # noqa: BLE001 - keep the other cases' results
                import traceback

                traceback.print_exc()
                notes.append(f"case {name} ({dtype}) stopped early: {type(exc).__name__}: {exc}")
            if not args.quiet:
                print(f"-- case {name} ({dtype}) took {time.perf_counter() - t0:.1f} s", flush=True)
            _cases.add_ratios(rec.rows)
            machine[dtype] = floors.record()
            targets[dtype] = report.evaluate_targets(rec.rows, dtype)
            # Write after every case, so that an interrupted run keeps what it measured.
            write_all(rows + rec.rows, machine, targets, final=False)
        rows += rec.rows

    results = write_all(rows, machine, targets, final=True)
    pngs = [] if args.no_plots else report.plots(results, out)
    if not args.quiet:
        print(
            f"wrote {out / 'results.json'}, {out / 'results.md'}"
            + (f", {', '.join(pngs)}" if pngs else "")
        )
        for dtype, tlist in targets.items():
            for t in tlist:
                print(
                    f"target [{dtype}] {t['description']} {report._param_str(t['params'])}: {t['verdict']}"
                )
    return 0
