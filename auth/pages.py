"""The login and consent page of `/oauth/authorize`: plain, accessible HTML, Vietnamese first, no external assets."""

from __future__ import annotations

from html import escape

from auth.scopes import SCOPE_DESCRIPTIONS

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:32rem;margin:2rem auto;
padding:0 1rem;line-height:1.5;color:#111;background:#fff}
h1{font-size:1.4rem}label{display:block;margin-top:1rem;font-weight:600}
input[type=text],input[type=password]{width:100%;padding:.6rem;font-size:1rem;border:2px solid #555;
border-radius:4px;box-sizing:border-box}input:focus,button:focus{outline:3px solid #0b57d0;outline-offset:2px}
fieldset{margin-top:1.2rem;border:1px solid #888;border-radius:4px}
.actions{margin-top:1.5rem;display:flex;gap:1rem}button{font-size:1rem;padding:.6rem 1.2rem;border-radius:4px;
border:2px solid #0b57d0;cursor:pointer}button.primary{background:#0b57d0;color:#fff}
button.secondary{background:#fff;color:#0b57d0}.error{border-left:4px solid #b3261e;padding:.5rem 1rem;
background:#fce8e6}.en{color:#444}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def consent_page(
    client_name: str,
    department_name: str,
    scopes: list[str],
    hidden: dict[str, str],
    error: str | None = None,
    username: str = "",
) -> str:
    items = "".join(
        f'<li>{escape(SCOPE_DESCRIPTIONS[s][0])} <span class="en" lang="en">({escape(SCOPE_DESCRIPTIONS[s][1])})</span></li>'
        for s in scopes
        if s in SCOPE_DESCRIPTIONS
    )
    fields = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in sorted(hidden.items())
    )
    alert = f'<p class="error" role="alert" id="form-error">{escape(error)}</p>' if error else ""
    described = ' aria-describedby="form-error"' if error else ""
    body = f"""
<h1>Đăng nhập và cấp quyền <span class="en" lang="en">/ Sign in and authorise</span></h1>
<p>Ứng dụng <strong>{escape(client_name)}</strong> của <strong>{escape(department_name)}</strong>
xin quyền truy cập dữ liệu dân số thay mặt bạn.
<span class="en" lang="en">The app <strong>{escape(client_name)}</strong> of {escape(department_name)}
asks to access population data on your behalf.</span></p>
{alert}
<form method="post" action="/oauth/authorize">
{fields}
<label for="username">Tên đăng nhập <span class="en" lang="en">/ Username</span></label>
<input type="text" id="username" name="username" autocomplete="username" required value="{escape(username)}"{described}>
<label for="password">Mật khẩu <span class="en" lang="en">/ Password</span></label>
<input type="password" id="password" name="password" autocomplete="current-password" required{described}>
<fieldset><legend>Quyền được cấp <span class="en" lang="en">/ Permissions</span></legend><ul>{items}</ul></fieldset>
<div class="actions">
<button class="primary" type="submit" name="decision" value="allow">Đồng ý <span lang="en">/ Allow</span></button>
<button class="secondary" type="submit" name="decision" value="deny" formnovalidate>Từ chối <span lang="en">/ Deny</span></button>
</div>
</form>"""
    return _page("Cấp quyền truy cập / Authorise access", body)


def error_page(description: str) -> str:
    body = f"""
<h1>Không thể cấp quyền <span class="en" lang="en">/ Authorisation failed</span></h1>
<p class="error" role="alert">{escape(description)}</p>
<p>Hãy liên hệ nhà phát triển ứng dụng. <span class="en" lang="en">Please contact the app's developer.</span></p>"""
    return _page("Lỗi cấp quyền / Authorisation error", body)
