// The login page: POST /api/login, then go to the panel; say in the page's language why it refuses (by the
// answer's status and code: the server's own text is for developers and stays in the console).

import { langSwitch, translatePage, translations } from "./i18n.js";
import { RETURN_PAGES, api } from "./net.js";

/** Where a login goes: the page that sent the user here (``?next=/qa``) when it is one of the site's own, else the
 * panel. Anything else in ``next`` (another site, ``//evil.example``) is ignored. */
function returnPage() {
  const next = new URLSearchParams(location.search).get("next");
  return next && RETURN_PAGES.includes(next) ? next : "/";
}

const T = translations({
  "Вход — CTI Companion": "Log in — CTI Companion",
  "Панель оператора и администратора": "The agents' and supervisors' panel",
  "Имя пользователя": "User name",
  "Пароль": "Password",
  "Войти": "Log in",
  "Войти (через {n} секунду)|Войти (через {n} секунды)|Войти (через {n} секунд)":
    "Log in (in {n} second)|Log in (in {n} seconds)",
  "Введите имя пользователя и пароль.": "Enter your user name and password.",
  "Слишком много неудачных попыток входа.": "Too many failed logins.",
  "Попробуйте через {n} секунду.|Попробуйте через {n} секунды.|Попробуйте через {n} секунд.":
    "Try again in {n} second.|Try again in {n} seconds.",
  "Неверное имя пользователя или пароль.": "Wrong user name or password.",
  "Неверные данные для входа.": "The login data is not valid.",
  "Сервер ответил ошибкой ({status}). Попробуйте позже.": "The server answered with an error ({status}). Try again later.",
  "Нет связи с сервером. Проверьте сеть и попробуйте снова.": "No connection to the server. Check the network and try again.",
  "Сеанс работы с панелью завершён сервером. Войдите снова.": "The server ended your panel session. Log in again.",
});

translatePage(T);
document.getElementById("login-lang").append(langSwitch());

const form = document.getElementById("login-form");
const nameInput = document.getElementById("login-name");
const passwordInput = document.getElementById("login-password");
const errorBox = document.getElementById("login-error");
const submit = document.getElementById("login-submit");

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

let lockedUntil = 0;
let lockTimer = null;

function lock(seconds) {
  lockedUntil = Date.now() + seconds * 1000;
  clearInterval(lockTimer);
  const tick = () => {
    const left = Math.ceil((lockedUntil - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(lockTimer);
      submit.disabled = false;
      submit.textContent = T("Войти");
      return;
    }
    submit.disabled = true;
    submit.textContent = T.plural("Войти (через {n} секунду)|Войти (через {n} секунды)|Войти (через {n} секунд)", left);
  };
  tick();
  lockTimer = setInterval(tick, 1000);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = nameInput.value.trim();
  const password = passwordInput.value;
  if (!name || !password) {
    showError(T("Введите имя пользователя и пароль."));
    (name ? passwordInput : nameInput).focus();
    return;
  }
  showError("");
  submit.disabled = true;
  try {
    const response = await fetch("/api/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ name, password }),
    });
    if (response.ok) {
      location.replace(returnPage());
      return;
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    const error = (data && data.error) || {};
    if (response.status === 429) {
      const wait = Number(response.headers.get("Retry-After")) || 30;
      showError(`${T("Слишком много неудачных попыток входа.")} ${T.plural(
        "Попробуйте через {n} секунду.|Попробуйте через {n} секунды.|Попробуйте через {n} секунд.", wait)}`);
      lock(wait);
      return;
    }
    if (error.message) console.info("server:", error.code, error.message);
    if (response.status === 401) {
      showError(T("Неверное имя пользователя или пароль."));
    } else if (response.status === 400) {
      showError(T("Неверные данные для входа."));
    } else {
      showError(T("Сервер ответил ошибкой ({status}). Попробуйте позже.", { status: response.status }));
    }
    passwordInput.select();
    passwordInput.focus();
  } catch {
    showError(T("Нет связи с сервером. Проверьте сеть и попробуйте снова."));
  } finally {
    if (Date.now() >= lockedUntil) submit.disabled = false;
  }
});

const reason = new URLSearchParams(location.search).get("reason");
if (reason === "closed") {
  showError(T("Сеанс работы с панелью завершён сервером. Войдите снова."));
} else {
  // Already logged in (a second tab, the back button): go straight to the panel.
  api("/api/me", { redirectOn401: false }).then((data) => {
    if (data && data.user) location.replace(returnPage());
  }).catch(() => {
    /* not logged in, or the server is unreachable: the form reports it on submit */
  });
}
