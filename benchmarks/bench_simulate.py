"""ETAS simulation throughput on one core: catalog events per second and peak memory, for ~1e6 and ~1e7 events.

    PYTHONPATH=workflow python benchmarks/bench_simulate.py [--sizes 1e6 1e7] [--repeats 5] [--no-reference]
        [--burn-in DAYS] [--margin KM] [--q Q] [--D KM2] [--no-prune]
    PYTHONPATH=workflow python benchmarks/bench_simulate.py --digests OUT.json [--compare REF.json]
    PYTHONPATH=workflow python benchmarks/bench_simulate.py --against OTHER/workflow [--sizes ...] [--repeats 21]

Model: the default config's most productive point (mu scaled to the size, K 0.3, alpha 1.5, c 0.01 d, p 1.1,
D 0.5 km^2, q 1.5, gamma 1, b 1, Mc 2.5, Mmax 7.5; n = 0.86) on a 100 x 100 km region over 3650 days, no
burn-in or margin unless asked (``--burn-in``, ``--margin``; ``--q`` and ``--D`` give a steeper kernel, whose
margin the simulator prunes, ``--no-prune`` turns that off). Each size runs in a fresh subprocess with
OMP/OPENBLAS/MKL threads set to 1 before numpy is imported, so peaks do not mix. Printed per implementation:
the best and the median over ``--repeats`` runs of catalog events / user CPU seconds of the call (DataFrame
included; on a shared machine the steadiest figure: neither waiting for a core nor the kernel's page faults
count), the best catalog events / CPU seconds (user + system) and / wall seconds, and the subprocess's peak
resident set size (ru_maxrss, the interpreter included); for etasvae also the simulated and pruned events per
catalog event. The plain numpy branching loop (float64 throughout, argsort at the end; its own subprocess)
does the same work unless ``--no-reference``: the same burn-in and margin
(unpruned), the same kept events; the ratio of the two best user-CPU rates is printed.

``--digests`` checks that a change for speed left the catalogs unchanged: it simulates a fixed set of cases
(``digest_cases``: untruncated and truncated GR, tapered Omori, steep and heavy kernels, with and without
burn-in, margin and pruning, ~1e6- and ~3e6-event catalogs, a genealogy deeper than 128 generations, several
seeds each) and writes the SHA-256 of every catalog's Parquet bytes (``catalog.write_catalog``) and of each
column's array to OUT.json; with ``--compare REF.json`` (the same run on another revision, e.g.
``git archive main workflow`` extracted and put first on PYTHONPATH) it lists the catalogs that differ and
exits 1 if any does.

``--against DIR`` times this revision's simulator against another's (``DIR/etasvae/simulate.py``, e.g. from
``git archive main workflow``) in one process, alternating the two on the same seeds: on a shared machine the
load changes between separate runs, so only such interleaved user-CPU figures compare two revisions fairly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
DURATION = 3650.0
REGION = (0.0, 100.0, 0.0, 100.0)
# Catalog events per background event for this model and window (measured: aftershocks past the window
# end and outside the region are lost), used to pick mu for a target size.
EVENTS_PER_BACKGROUND = 2.2


def params_for(events: float, q: float = 1.5, D: float = 0.5):
    from etasvae.params import ETASParams

    return ETASParams(
        mu=events / EVENTS_PER_BACKGROUND / DURATION,
        K=0.3,
        alpha=1.5,
        c=0.01,
        p=1.1,
        D=D,
        q=q,
        gamma=1.0,
        b=1.0,
        mc=2.5,
        mmax=7.5,
    )


def plain_branching(params, duration, region, rng, burn_in=0.0, margin=0.0):
    """Reference: a straightforward vectorised branching loop (float64, argsort), same model; the background
    starts at -burn_in and covers the region grown by margin km on each side at the region's density, and the
    catalog keeps the events in [0, duration) inside the region, as simulate_etas does."""
    import numpy as np
    import pandas as pd

    xmin, xmax, ymin, ymax = region
    grown = (xmax - xmin + 2 * margin) * (ymax - ymin + 2 * margin) / ((xmax - xmin) * (ymax - ymin))
    n = rng.poisson(params.mu * grown * (duration + burn_in))
    t = rng.uniform(-burn_in, duration, n)
    x, y = rng.uniform(xmin - margin, xmax + margin, n), rng.uniform(ymin - margin, ymax + margin, n)
    dmax = params.mmax - params.mc
    mags = lambda k: params.mc - np.log1p(-rng.random(k) * -np.expm1(-params.beta * dmax)) / params.beta  # noqa: E731
    m = mags(n)
    ids, cols = np.arange(n), [[t], [m], [x], [y], [np.full(n, -1)], [np.zeros(n, np.int32)]]
    total, g = n, 0
    while n:
        counts = rng.poisson(params.K * np.exp(params.alpha * (m - params.mc)))
        pi = np.repeat(np.arange(n), counts)
        if not pi.size:
            break
        tc = t[pi] + params.c * ((1 - rng.random(pi.size)) ** (-1 / (params.p - 1)) - 1)
        ok = tc < duration
        pi, tc = pi[ok], tc[ok]
        k = tc.size
        sigma = params.D * np.exp(params.gamma * (m[pi] - params.mc))
        r = np.sqrt(sigma * ((1 - rng.random(k)) ** (-1 / (params.q - 1)) - 1))
        theta = rng.uniform(0, 2 * np.pi, k)
        xc, yc, mc_ = x[pi] + r * np.cos(theta), y[pi] + r * np.sin(theta), mags(k)
        g += 1
        for col, v in zip(cols, (tc, mc_, xc, yc, ids[pi], np.full(k, g, np.int32))):
            col.append(v)
        t, m, x, y, ids, n = tc, mc_, xc, yc, np.arange(total, total + k), k
        total += k
    t, m, x, y, par, gen = (np.concatenate(c) for c in cols)
    keep = np.flatnonzero((t >= 0) & (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax))
    order = keep[np.argsort(t[keep])]
    new_id = np.full(total + 1, -1)
    new_id[order] = np.arange(order.size)
    return pd.DataFrame(
        {
            "event_id": np.arange(order.size),
            "time": t[order],
            "magnitude": m[order],
            "x": x[order],
            "y": y[order],
            "parent_id": new_id[par[order]],
            "generation": gen[order],
        }
    )


def _case(name, params, seeds, **window):
    return name, params, seeds, window


def digest_cases():
    """(name, ETASParams, seeds, window) of the catalogs the --digests check compares."""
    from etasvae.params import ETASParams

    big = ETASParams(mu=20.0, K=0.25, alpha=1.2, c=0.01, p=1.15, D=0.3, q=1.6, gamma=0.8, b=1.0, mc=2.0)
    steep = ETASParams(mu=4.0, K=0.3, alpha=0.8, c=0.01, p=1.2, D=0.01, q=3.0, gamma=0.5, b=1.0, mc=2.0, mmax=5.0)
    default = params_for(1.0).to_dict()
    square = (0.0, 100.0, 0.0, 100.0)
    return [
        _case("untruncated", big, range(4), duration=1000.0, region=(0.0, 200.0, 0.0, 200.0), burn_in=100.0,
              margin=20.0),
        _case("untruncated_bare", big, range(4), duration=300.0, region=(-50.0, 150.0, 10.0, 90.0)),
        _case("steep_pruned", steep, range(4), duration=200.0, region=(0.0, 10.0, 0.0, 10.0), burn_in=20.0,
              margin=5.0),
        _case("tapered", ETASParams(**{**big.to_dict(), "p": 0.9, "tau": 50.0}), range(3), duration=300.0,
              region=(0.0, 100.0, 0.0, 100.0), burn_in=50.0, margin=10.0),
        *(
            _case(f"default_K{k}", ETASParams(**{**default, "mu": 5.0, "K": k}), range(3), duration=730.0,
                  region=square, burn_in=365.0, margin=25.0)
            for k in (0.1, 0.2, 0.3)
        ),
        _case("default_bare_1e5", params_for(1e5), range(3), duration=DURATION, region=square),
        _case("default_bare_1e6", params_for(1e6), range(2), duration=DURATION, region=square),
        _case("default_bare_3e6", params_for(3e6), range(1), duration=DURATION, region=square),
        _case("default_margin_1e6", params_for(1e6), range(1), duration=DURATION, region=square, burn_in=365.0,
              margin=25.0),
        _case("tiny", params_for(30.0), range(20), duration=DURATION, region=square),
        _case("deep", ETASParams(mu=2.0, K=0.99, alpha=0.0, c=1e-4, p=3.0, D=0.01, q=3.0, gamma=0.0, b=1.0, mc=2.0,
                                 mmax=4.0), range(2), duration=300.0, region=square),  # > 128 generations
    ]


def digests(path) -> dict:
    import hashlib
    import tempfile
    from pathlib import Path

    import numpy as np

    from etasvae.catalog import write_catalog
    from etasvae.simulate import simulate_etas

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, params, seeds, window in digest_cases():
            for seed in seeds:
                cat = simulate_etas(params, rng=np.random.default_rng([seed, 20261125]), **window)
                file = Path(tmp) / "c.parquet"
                write_catalog(cat, file, {"case": name, "seed": seed}, mc=params.mc)
                entry = {"events": len(cat), "parquet": hashlib.sha256(file.read_bytes()).hexdigest()}
                for column in cat.columns:
                    values = cat[column].to_numpy()
                    entry[column] = hashlib.sha256(values.dtype.str.encode() + values.tobytes()).hexdigest()
                out[f"{name}/{seed}"] = entry
    Path(path).write_text(json.dumps(out, indent=1))
    return out


def against(args) -> None:
    """Alternating user-CPU timings of this simulator and the one in ``args.against`` (see the docstring)."""
    import importlib.util
    import resource
    from pathlib import Path

    import numpy as np

    import etasvae.simulate as this

    path = Path(args.against) / "etasvae" / "simulate.py"
    spec = importlib.util.spec_from_file_location("etasvae._other_simulate", path)
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    for size in args.sizes:
        params = params_for(size, args.q, args.D)
        rates = {"this": [], "other": []}
        for rep in range(args.repeats):
            pairs = (("this", this), ("other", other))
            for name, module in pairs if rep % 2 else pairs[::-1]:
                user = resource.getrusage(resource.RUSAGE_SELF).ru_utime
                cat = module.simulate_etas(params, duration=DURATION, region=REGION, rng=np.random.default_rng(rep),
                                           burn_in=args.burn_in, margin=args.margin, prune=not args.no_prune)
                rates[name].append(len(cat) / (resource.getrusage(resource.RUSAGE_SELF).ru_utime - user))
                del cat
        parts = []
        for name, values in rates.items():
            values.sort()
            best, median = values[-1] / 1e6, values[len(values) // 2] / 1e6
            parts.append(f"{name}: {best:.2f} M events/s user CPU best, {median:.2f} median")
        print(f"~{size:.0e} events, {args.repeats} alternating runs each: " + "; ".join(parts) + f" ({args.against})")


def child(args) -> None:
    import resource
    import time

    import numpy as np

    from etasvae.simulate import simulate_etas

    params = params_for(args.events, args.q, args.D)
    runs = []
    for rep in range(args.repeats):
        rng = np.random.default_rng(rep)
        stats = {}
        wall, cpu, user = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
        if args.implementation == "etasvae":
            cat = simulate_etas(
                params, duration=DURATION, region=REGION, rng=rng, burn_in=args.burn_in, margin=args.margin,
                prune=not args.no_prune, stats=stats,
            )
        else:
            cat = plain_branching(params, DURATION, REGION, rng, burn_in=args.burn_in, margin=args.margin)
        user = resource.getrusage(resource.RUSAGE_SELF).ru_utime - user
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        runs.append({"events": len(cat), "wall": wall, "cpu": cpu, "user": user, **stats})
        del cat
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"runs": runs, "peak_mib": peak, "branching_ratio": params.branching_ratio()}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7], help="target catalog sizes (events)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--burn-in", type=float, default=0.0)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--q", type=float, default=1.5)
    parser.add_argument("--D", type=float, default=0.5)
    parser.add_argument("--no-prune", action="store_true", help="simulate_etas(prune=False)")
    parser.add_argument("--no-reference", action="store_true", help="skip the plain numpy branching loop")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--implementation", default="etasvae", help=argparse.SUPPRESS)
    parser.add_argument("--against", metavar="DIR", help="time against DIR/etasvae/simulate.py, alternating")
    parser.add_argument("--digests", metavar="OUT.json", help="write the digests of the check catalogs and stop")
    parser.add_argument("--compare", metavar="REF.json", help="with --digests: compare with a reference run")
    args = parser.parse_args(argv)
    if args.digests:
        mine = digests(args.digests)
        events = sum(entry["events"] for entry in mine.values())
        print(f"{len(mine)} catalogs, {events:,} events: digests in {args.digests}")
        if args.compare:
            ref = json.loads(open(args.compare).read())
            differ = sorted(k for k in set(ref) | set(mine) if ref.get(k) != mine.get(k))
            for key in differ:
                print(f"DIFFERS {key}: " + ", ".join(
                    c for c in sorted(set(ref.get(key, {})) | set(mine.get(key, {})))
                    if ref.get(key, {}).get(c) != mine.get(key, {}).get(c)))
            print(f"{len(ref)} reference catalogs: {'all identical' if not differ else f'{len(differ)} differ'}")
            sys.exit(1 if differ else 0)
        return
    if args.against:
        os.environ.update({var: "1" for var in THREAD_VARS})  # numpy is imported only in against(): in time
        against(args)
        return
    if args.child:
        child(args)
        return
    env = {**os.environ, **{v: "1" for v in THREAD_VARS}}
    print(
        f"ETAS simulation, one thread, {args.repeats} runs each; {DURATION:g} days, region {REGION}, "
        f"burn-in {args.burn_in:g} d, margin {args.margin:g} km, q {args.q:g}, D {args.D:g} km^2"
        + (", no pruning" if args.no_prune else "")
    )
    for size in args.sizes:
        rates, parts = {}, []
        for implementation in ("etasvae",) if args.no_reference else ("etasvae", "plain"):
            cmd = [sys.executable, __file__, "--child", "--implementation", implementation, "--events", str(size)]
            for flag in ("repeats", "burn_in", "margin", "q", "D"):
                cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            cmd += ["--no-prune"] if args.no_prune else []
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            runs = result["runs"]
            wall = sorted(r["events"] / r["wall"] for r in runs)
            cpu = max(r["events"] / r["cpu"] for r in runs)
            user = sorted(r["events"] / r["user"] for r in runs)
            rates[implementation] = user[-1]
            events = sum(r["events"] for r in runs) / len(runs)
            part = (
                f"{implementation}: {user[-1] / 1e6:.2f} M events/s user CPU best, {user[len(user) // 2] / 1e6:.2f} "
                f"median ({events:,.0f} events; {cpu / 1e6:.2f} M/s user+system CPU best, {wall[-1] / 1e6:.2f} M/s "
                f"wall best), peak RSS {result['peak_mib']:.0f} MiB"
            )
            if "simulated" in runs[0]:
                simulated = sum(r["simulated"] for r in runs) / len(runs) / events
                pruned = sum(r["pruned"] for r in runs) / len(runs) / events
                part += f", {simulated:.2f} simulated and {pruned:.2f} pruned per catalog event"
            parts.append(part)
        if len(rates) == 2:
            parts.append(f"ratio (user CPU) {rates['etasvae'] / rates['plain']:.2f}")
        print(f"~{size:.0e} events (n = {result['branching_ratio']:.3f}): " + "; ".join(parts))


if __name__ == "__main__":
    main()
