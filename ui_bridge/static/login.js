// The login page: POST /api/login, then go to the panel; show the server's message when it refuses.

import { api } from "./net.js";

const form = document.getElementById("login-form");
const nameInput = document.getElementById("login-name");
const passwordInput = document.getElementById("login-password");
const errorBox = document.getElementById("login-error");
const submit = document.getElementById("login-submit");

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

function plural(n, one, few, many) {
  const d = n % 10;
  const dd = n % 100;
  if (d === 1 && dd !== 11) return one;
  if (d >= 2 && d <= 4 && (dd < 12 || dd > 14)) return few;
  return many;
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
      submit.textContent = "Войти";
      return;
    }
    submit.disabled = true;
    submit.textContent = `Войти (через ${left} ${plural(left, "секунду", "секунды", "секунд")})`;
  };
  tick();
  lockTimer = setInterval(tick, 1000);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = nameInput.value.trim();
  const password = passwordInput.value;
  if (!name || !password) {
    showError("Введите имя пользователя и пароль.");
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
      location.replace("/");
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
      showError(`Слишком много неудачных попыток входа. Попробуйте через ${wait} ${plural(wait, "секунду", "секунды", "секунд")}.`);
      lock(wait);
      return;
    }
    if (response.status === 401) {
      showError("Неверное имя пользователя или пароль.");
    } else {
      showError(error.message || `Сервер ответил ошибкой (HTTP ${response.status}). Попробуйте позже.`);
    }
    passwordInput.select();
    passwordInput.focus();
  } catch {
    showError("Нет связи с сервером. Проверьте сеть и попробуйте снова.");
  } finally {
    if (Date.now() >= lockedUntil) submit.disabled = false;
  }
});

const reason = new URLSearchParams(location.search).get("reason");
if (reason === "closed") {
  showError("Сеанс работы с панелью завершён сервером. Войдите снова.");
} else {
  // Already logged in (a second tab, the back button): go straight to the panel.
  api("/api/me", { redirectOn401: false }).then((data) => {
    if (data && data.user) location.replace("/");
  }).catch(() => {
    /* not logged in, or the server is unreachable: the form reports it on submit */
  });
}
