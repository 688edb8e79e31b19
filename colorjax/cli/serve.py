"""`python -m colorjax.serve (--workdir RUN [--step S] | --weights NAME|PATH [--model M])`: the colorization web app.

Loads the model once, then serves the pages and the JSON API (documented at /docs) on 127.0.0.1:8000:

    python -m colorjax.serve --workdir runs/zhang --step best
    python -m colorjax.serve --weights colorization_release_v2.pth --model eccv16 --single-user

Accounts, history and images live in --data-dir (SQLite + PNG files). To reach it on a remote GPU machine, keep it
on 127.0.0.1 there and forward the port: `ssh -L 8000:127.0.0.1:8000 gpu-vm`, then open http://127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress

from colorjax import ColorjaxError, serve
from colorjax.cli import common as cli


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m colorjax.serve",
        description=__doc__.split("\n\n")[0],
        epilog="See docs/serve.md for the API and for running it on a GPU VM behind SSH port-forwarding.",
    )
    cli.add_model_arguments(parser, several=True)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument(
        "--data-dir",
        default="colorjax-app-data",
        help="folder for the database and the images (default: ./colorjax-app-data)",
    )
    parser.add_argument(
        "--single-user",
        action="store_true",
        help="no accounts: one local user (a personal tool on your own machine)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=serve.MAX_UPLOAD_MB,
        help=f"largest upload in MB (default: {serve.MAX_UPLOAD_MB:g})",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=serve.MAX_PIXELS,
        help=f"largest photo in pixels, checked before decoding (default: {serve.MAX_PIXELS})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=serve.MODEL_CONCURRENCY,
        help=f"photos the model colours at the same time (default: {serve.MODEL_CONCURRENCY}; the "
        "rest wait their turn)",
    )
    parser.add_argument(
        "--undo-seconds",
        type=float,
        default=serve.UNDO_S,
        help=f"seconds a deleted photo can be restored (Undo) before it is removed for good (default: "
        f"{serve.UNDO_S:g})",
    )
    parser.add_argument(
        "--allowed-hosts",
        action="append",
        default=[],
        metavar="NAMES",
        help="comma-separated host names the app also answers to, besides 127.0.0.1, localhost, ::1 and --host "
        "(a request naming another host is refused: DNS rebinding); e.g. the name a TLS proxy forwards",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        default=None,
        metavar="IPS",
        help="comma-separated addresses of proxies whose X-Forwarded-For/-Proto headers are believed (default: "
        "none; behind an SSH tunnel leave it unset)",
    )
    parser.add_argument(
        "--https-cookies",
        action="store_true",
        help="mark session cookies Secure (when a TLS proxy sits in front of the app)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for option, value in (
        ("--max-upload-mb", args.max_upload_mb),
        ("--max-pixels", args.max_pixels),
        ("--concurrency", args.concurrency),
        ("--undo-seconds", args.undo_seconds),
    ):
        if value <= 0:
            parser.error(f"{option} must be positive, got {value}")
    from colorjax.inference.colorizer import prefer_fast_cpu_kernels

    prefer_fast_cpu_kernels()
    try:
        import uvicorn

        from colorjax.serve import security
        from colorjax.serve.app import create_app, server_config
    except ImportError as e:
        cli.print_error(f"the app needs the 'serve' extra ({e.name} is missing): pip install 'colorjax[serve]'")
        return 1
    from colorjax.inference.colorizer import open_colorizer

    hosts = security.allowed_hosts(args.host, [n for names in args.allowed_hosts for n in names.split(",")])
    try:
        models = _models(args, open_colorizer)
        app = create_app(
            models,
            args.data_dir,
            single_user=args.single_user,
            max_upload_mb=args.max_upload_mb,
            max_pixels=args.max_pixels,
            model_concurrency=args.concurrency,
            undo_s=args.undo_seconds,
            https_only_cookies=args.https_cookies,
            allowed_hosts=hosts,
        )
    except ColorjaxError as e:
        cli.print_error(e)
        return 1
    host = f"[{args.host}]" if ":" in args.host else args.host
    described = models.description if hasattr(models, "description") else f"the models {', '.join(models)}"
    print(f"colorjax app with {described}: http://{host}:{args.port}/", flush=True)
    if not _is_loopback(args.host):
        print(
            f"warning: listening on {args.host}, reachable from other machines; without TLS in front, "
            "passwords and cookies cross the network in the clear (SSH port-forwarding avoids this).",
            flush=True,
        )
    print(f"answering requests for the hosts {', '.join(hosts)} (--allowed-hosts adds names)", flush=True)
    uvicorn.Server(server_config(app, args.host, args.port, args.forwarded_allow_ips, log_level="info")).run()
    return 0


def _models(args: argparse.Namespace, open_colorizer):
    """One --workdir or --weights: its colorizer, loaded now (a bad path is said at start). Several (repeated
    --workdir, comma-separated --weights): {name: loader}, each loaded at its first use (`ColorService`); names are
    the weights' names or file stems and the runs' folder names, and each source is checked to exist now."""
    from pathlib import Path

    from colorjax.weights.registry import KNOWN_WEIGHTS

    workdirs = args.workdir or []
    weights = [w.strip() for w in (args.weights or "").split(",") if w.strip()]
    if len(workdirs) + len(weights) == 1:
        return open_colorizer(
            workdir=workdirs[0] if workdirs else None,
            step=args.step,
            weights=weights[0] if weights else None,
            model=args.model,
        )
    models = {}
    for kind, source in [("workdir", w) for w in workdirs] + [("weights", w) for w in weights]:
        if not (Path(source).exists() or (kind == "weights" and source in KNOWN_WEIGHTS)):
            raise ColorjaxError(f"--{kind} {source}: no such {'run folder' if kind == 'workdir' else 'weights'}.")
        name = Path(source.rstrip("/")).stem if Path(source).exists() else source
        while name in models:
            name += "-2"
        if kind == "workdir":
            models[name] = functools.partial(open_colorizer, workdir=source, step=args.step)
        else:
            models[name] = functools.partial(open_colorizer, weights=source, model=args.model)
    return models


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(argv: list[str] | None = None) -> None:
    cli.run_cli(main, argv)
