import type { DescMethod } from "@bufbuild/protobuf";
import { isCallableFromBrowser, kindLabels, methodPath, services } from "./catalog.ts";
import { h } from "./dom.ts";

/** The list of services and methods; shows which one is selected. */
export interface MethodList {
  select(method: DescMethod | undefined): void;
}

/** Lists every method of every service in `nav`, calling `onSelect` when one is chosen. */
export function renderMethodList(
  nav: HTMLElement,
  onSelect: (method: DescMethod) => void,
): MethodList {
  const buttons = new Map<DescMethod, HTMLButtonElement>();
  for (const service of services) {
    const headingId = `service-${service.typeName}`;
    const list = h("ul", { "aria-labelledby": headingId });
    for (const method of service.methods) {
      const callable = isCallableFromBrowser(method);
      const kind = h(
        "span",
        { class: callable ? "kind" : "kind unavailable" },
        callable
          ? kindLabels[method.methodKind]
          : `${kindLabels[method.methodKind]}: not callable from a browser`,
      );
      const button = h(
        "button",
        { type: "button", "data-method": methodPath(method), "aria-current": "false" },
        h("span", {}, method.name),
        kind,
      );
      button.addEventListener("click", () => onSelect(method));
      buttons.set(method, button);
      list.append(h("li", {}, button));
    }
    nav.append(h("section", {}, h("h2", { id: headingId }, service.typeName), list));
  }
  return {
    select(selected) {
      for (const [method, button] of buttons) {
        button.setAttribute("aria-current", String(method === selected));
      }
    },
  };
}
