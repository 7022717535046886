import type { DescMethod, JsonValue } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { type CallResult, callMethod } from "./call.ts";
import { isCallableFromBrowser, kindLabels, signature } from "./catalog.ts";
import { byId, h } from "./dom.ts";
import { requestTemplate } from "./request-template.ts";

export interface CallPanelOptions {
  transport: Transport;
  /** The access token to send, read at each call; undefined when nobody is logged in. */
  token: () => string | undefined;
}

/** The method panel (request, Call, Stop) and the response panel. */
export interface CallPanel {
  /** Shows a method with its request template, stopping a call still running. */
  show(method: DescMethod): void;
}

export function createCallPanel(options: CallPanelOptions): CallPanel {
  const name = byId("method-name", HTMLElement);
  const sig = byId("method-signature", HTMLElement);
  const note = byId("method-note", HTMLElement);
  const form = byId("call-form", HTMLFormElement);
  const request = byId("request", HTMLTextAreaElement);
  const call = byId("call", HTMLButtonElement);
  const stop = byId("stop", HTMLButtonElement);
  const reset = byId("reset", HTMLButtonElement);
  const status = byId("status", HTMLElement);
  const elapsed = byId("elapsed", HTMLElement);
  const count = byId("count", HTMLElement);
  const requestId = byId("request-id", HTMLElement);
  const errorMessage = byId("error-message", HTMLElement);
  const messages = byId("messages", HTMLOListElement);

  let current: DescMethod | undefined;
  let running: AbortController | undefined;

  const template = (method: DescMethod) => JSON.stringify(requestTemplate(method.input), null, 2);

  const clearResult = () => {
    for (const dd of [status, elapsed, count, requestId]) dd.textContent = "—";
    status.className = "";
    errorMessage.hidden = true;
    messages.replaceChildren();
  };

  const append = (message: JsonValue, index: number) => {
    const label = current?.methodKind === "server_streaming" ? `message ${index + 1}` : "message";
    messages.append(
      h(
        "li",
        {},
        h("span", { class: "index" }, label),
        h("pre", {}, JSON.stringify(message, null, 2)),
      ),
    );
    count.textContent = String(index + 1);
  };

  const finish = (result: CallResult) => {
    const ok = result.status === "OK";
    status.textContent = result.sent ? result.status : "not sent";
    status.className = ok ? "ok" : "failed";
    elapsed.textContent = result.sent ? formatMs(result.elapsedMs) : "—";
    count.textContent = String(result.messages.length);
    requestId.textContent = result.requestId ?? "—";
    const hint =
      result.status === "UNAUTHENTICATED" && options.token() === undefined ? " (log in first)" : "";
    errorMessage.textContent = ok ? "" : `${result.message}${hint}`;
    errorMessage.hidden = ok;
  };

  const setRunning = (controller: AbortController | undefined) => {
    running = controller;
    stop.hidden = controller === undefined;
    call.disabled = controller !== undefined || !current || !isCallableFromBrowser(current);
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!current || running) return;
    const method = current;
    const controller = new AbortController();
    setRunning(controller);
    clearResult();
    status.textContent = method.methodKind === "server_streaming" ? "streaming…" : "calling…";
    callMethod({
      transport: options.transport,
      method,
      request: request.value,
      token: options.token(),
      signal: controller.signal,
      onMessage: append,
    }).then((result) => {
      // A call stopped because another method was chosen has nothing left to show.
      if (running !== controller) return;
      setRunning(undefined);
      finish(result);
    });
  });

  stop.addEventListener("click", () => running?.abort());
  reset.addEventListener("click", () => {
    if (current) request.value = template(current);
  });

  return {
    show(method) {
      running?.abort();
      current = method;
      setRunning(undefined);
      const callable = isCallableFromBrowser(method);
      name.textContent = `${method.parent.name}.${method.name}`;
      sig.textContent = `${kindLabels[method.methodKind]}: rpc ${signature(method)}`;
      note.hidden = callable;
      note.textContent = callable
        ? ""
        : `${kindLabels[method.methodKind]} methods are not callable from a browser: fetch cannot stream a request. Use a gRPC client or buf curl.`;
      request.disabled = false;
      reset.disabled = false;
      request.value = template(method);
      clearResult();
    },
  };
}

function formatMs(ms: number): string {
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}
