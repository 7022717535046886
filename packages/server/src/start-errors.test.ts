import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeStartError } from "./start-errors.ts";

/** An error shaped as Node's file system and socket calls make them. */
function errnoError(fields: Record<string, unknown>): Error {
  return Object.assign(new Error(`${fields.syscall} ${fields.code}`), fields);
}

describe("describeStartError", () => {
  const sources = [
    { setting: "KEEL_PORT (port)", port: 443 },
    { setting: "KEEL_AUDIT_LOG (auditLog)", path: "/var/log/keel/audit.log" },
    { setting: "KEEL_DATA_DIR (dataDir)", path: "/srv/keel" },
  ];

  it("names the setting of a privileged port or an unwritable path (EACCES), the most specific first", () => {
    assert.equal(
      describeStartError(errnoError({ code: "EACCES", syscall: "listen", port: 443 }), sources),
      "KEEL_PORT (port) = 443: permission denied (listen EACCES)",
    );
    assert.equal(
      describeStartError(
        errnoError({ code: "EACCES", syscall: "open", path: "/srv/keel/keel.db" }),
        sources,
      ),
      'KEEL_DATA_DIR (dataDir) = "/srv/keel": permission denied (open EACCES)',
    );
    assert.equal(
      describeStartError(
        errnoError({ code: "EACCES", syscall: "open", path: "/var/log/keel/audit.log" }),
        sources,
      ),
      'KEEL_AUDIT_LOG (auditLog) = "/var/log/keel/audit.log": permission denied (open EACCES)',
    );
  });

  it("leaves other errors as they are", () => {
    assert.equal(describeStartError(new Error("boom"), sources), "boom");
    assert.equal(
      describeStartError(
        errnoError({ code: "EACCES", syscall: "open", path: "/etc/other" }),
        sources,
      ),
      "open EACCES",
    );
    assert.equal(
      describeStartError(errnoError({ code: "EADDRINUSE", syscall: "listen", port: 80 }), sources),
      "listen EADDRINUSE",
    );
  });
});
