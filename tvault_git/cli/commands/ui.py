"""``git tvault ui``: serve the registry as a local, read-only web app, or export it as a static site.

Torch-free at import; Flask is imported only when the command runs (it is the optional ``ui`` extra).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import webbrowser

import click

from tvault_git.cli.app import repo_from_ctx
from tvault_git.errors import InvalidInput


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names that resolve only to them (localhost)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def _need_flask() -> None:
    try:
        import flask  # noqa: F401
        import pygments  # noqa: F401
    except ImportError:
        raise InvalidInput(
            "git tvault ui needs the 'ui' extra: pip install 'tvault-git[ui]' (flask, pygments)"
        ) from None


@click.command("ui")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but loopback exposes the registry to the network.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the UI in a web browser.")
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Write the pages as a static site into DIR instead of serving them.",
)
@click.option(
    "--export-weights", is_flag=True, help="With --export: also write each entry's weights as .safetensors (large)."
)
@click.pass_context
def ui_cmd(
    ctx: click.Context, port: int, host: str, open_browser: bool, export_dir: str | None, export_weights: bool
) -> None:
    """Browse entries, model histories and side-by-side diffs in a web browser (read-only)."""
    _need_flask()
    from tvault_git import web

    repo = repo_from_ctx(ctx)
    path = repo.workdir or repo.path
    if export_dir is not None:
        counts = web.export_site(path, export_dir, weights=export_weights)
        click.echo(
            f"wrote {counts['pages']} pages ({counts['entries']} entries, {counts['compare']} comparisons, "
            f"{counts['models']} models) to {export_dir}; open {export_dir}/index.html"
        )
        return
    if not is_loopback(host):
        click.echo(
            f"tvault: warning: binding {host}: anyone who can reach this address can read the whole registry "
            "(weights, source, metadata); there is no authentication",
            err=True,
        )
    from werkzeug.serving import make_server

    app = web.create_app(path)
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as e:
        raise InvalidInput(f"cannot listen on {host}:{port}: {e.strerror or e}; choose another --port") from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_port}/"
    click.echo(f"tvault ui: serving {path} at {url} (read-only; Ctrl-C to stop)", err=False)
    if open_browser:
        threading.Timer(0.3, lambda: webbrowser.open(url)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["is_loopback", "ui_cmd"]
