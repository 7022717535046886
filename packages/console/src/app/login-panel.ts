import { ConnectError, type Transport } from "@connectrpc/connect";
import { codeName } from "./call.ts";
import { byId } from "./dom.ts";
import { login, type Session } from "./session.ts";

/**
 * Wires the login form: Login through `transport`, then shows who is logged in and a Log out
 * button. The token lives in memory only; `onChange` hears of every login and logout.
 */
export function setUpLogin(
  transport: Transport,
  onChange: (session: Session | undefined) => void,
): void {
  const form = byId("login-form", HTMLFormElement);
  const username = byId("username", HTMLInputElement);
  const password = byId("password", HTMLInputElement);
  const submit = byId("login", HTMLButtonElement);
  const sessionBox = byId("session", HTMLElement);
  const sessionText = byId("session-text", HTMLElement);
  const logout = byId("logout", HTMLButtonElement);
  const status = byId("login-status", HTMLElement);

  const show = (session: Session | undefined, message: string, failed = false) => {
    form.hidden = session !== undefined;
    sessionBox.hidden = session === undefined;
    sessionText.textContent = session
      ? `Logged in as ${session.username} (user ${session.userId})`
      : "";
    status.textContent = message;
    status.classList.toggle("error", failed);
    onChange(session);
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.textContent = "Logging in…";
    status.classList.remove("error");
    login(transport, { username: username.value, password: password.value })
      .then((session) => {
        password.value = "";
        const until = session.expiresAt
          ? `; token valid until ${session.expiresAt.toLocaleTimeString()}`
          : "";
        show(session, `Calls now carry your access token${until}.`);
        logout.focus();
      })
      .catch((err: unknown) => {
        const error = ConnectError.from(err);
        show(undefined, `Login failed: ${codeName(error.code)}: ${error.rawMessage}`, true);
        password.focus();
      })
      .finally(() => {
        submit.disabled = false;
      });
  });

  logout.addEventListener("click", () => {
    show(undefined, "Logged out: calls carry no token.");
    username.focus();
  });
}
