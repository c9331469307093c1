"""``awe web``: serve the queue pages and the JSON API; ``awe web token``: API tokens.

awe web [--host 127.0.0.1] [--port 8700] [--sync-interval 5]
awe web token [--label TEXT]     make a token for you (shown once; stored hashed)
awe web token --list             your tokens (never their secrets)
awe web token --revoke ID        revoke one of your tokens
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700


def add_parsers(commands: Any) -> None:
    web = commands.add_parser(
        "web", help="serve the queue, job and DPU pages and the JSON API (token: API tokens)"
    )
    web.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (loopback)")
    web.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8700)")
    web.add_argument(
        "--sync-interval",
        type=float,
        default=5.0,
        help="seconds between looks at unfinished jobs' journals (0: only when users look)",
    )
    actions = web.add_subparsers(dest="web_action")
    token = actions.add_parser("token", help="make, list or revoke your API tokens")
    token.add_argument("--label", default="", help="a note on what the token is for")
    token.add_argument("--list", action="store_true", help="list your tokens")
    token.add_argument("--revoke", type=int, metavar="ID", help="revoke your token ID")


def run(args: argparse.Namespace) -> int:
    from awe.env import load_env

    env = load_env()
    if args.web_action == "token":
        return _token(env, args)
    return serve(env, args.host, args.port, args.sync_interval)


def serve(env: Any, host: str, port: int, sync_interval: float) -> int:
    """Run the service until interrupted."""
    import uvicorn

    from awe.database_url import mask_url
    from awe.env import configured_dpu_names
    from awe.web.app import Settings, create_app

    settings = Settings(
        database_url=env.database_url,
        data_root=env.data_root,
        default_project=env.project,
        configured_dpus=tuple(configured_dpu_names(env)),
        server_user=env.username,
        sync_interval=sync_interval,
    )
    app = create_app(settings)
    if not _is_loopback(host):
        print(
            f"WARNING: listening on {host}, reachable from other machines; tokens travel in "
            f"clear text unless a TLS proxy is in front",
            file=sys.stderr,
        )
    print(f"AWE web on http://{host}:{port}/ (database {mask_url(env.database_url)})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _token(env: Any, args: argparse.Namespace) -> int:
    from awe.db.engine import open_database
    from awe.db.tokens import create_token, list_tokens, revoke_token
    from awe.errors import AweError

    database = open_database(env.database_url)
    try:
        if args.list:
            for token in list_tokens(database, env.username):
                used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
                state = " REVOKED" if token.revoked else ""
                made = f"{token.created_at:%Y-%m-%d %H:%M}"
                print(f"{token.id}\t{token.label or '-'}\tmade {made}\tused {used}{state}")
            return 0
        if args.revoke is not None:
            try:
                revoke_token(database, args.revoke, env.username)
            except LookupError as err:
                raise AweError(str(err)) from None
            print(f"Revoked token {args.revoke} of {env.username}")
            return 0
        token_id, secret = create_token(database, env.username, args.label)
        print(secret)
        print(
            f"Token {token_id} for {env.username}: send it as 'Authorization: Bearer <token>'. "
            f"It is shown only now (the database keeps its hash).",
            file=sys.stderr,
        )
        return 0
    finally:
        database.dispose()
