import type { DescMethod } from "@bufbuild/protobuf";
import { createConnectTransport } from "@connectrpc/connect-web";
import { createCallPanel } from "./call-panel.ts";
import { findMethod, methodPath } from "./catalog.ts";
import { byId } from "./dom.ts";
import { setUpLogin } from "./login-panel.ts";
import { renderMethodList } from "./method-list.ts";
import type { Session } from "./session.ts";

// The console is served by the server it calls: Connect with JSON, so requests and responses are
// readable in the browser's network panel.
const transport = createConnectTransport({ baseUrl: location.origin, useBinaryFormat: false });

let session: Session | undefined;
setUpLogin(transport, (next) => {
  session = next;
});
const panel = createCallPanel({ transport, token: () => session?.accessToken });
const list = renderMethodList(byId("methods", HTMLElement), (method) => {
  show(method);
  // Not `location.hash =`: its hashchange would come later and show the method a second time.
  history.pushState(null, "", `#${methodPath(method)}`);
});

function show(method: DescMethod | undefined) {
  list.select(method);
  if (method) panel.show(method);
}

// The chosen method lives in the URL (#/user.v1.UserService/GetUser): links, reloads and the back
// button keep it.
const route = () => show(findMethod(decodeURIComponent(location.hash.slice(1))));
addEventListener("popstate", route);
addEventListener("hashchange", route);
route();
