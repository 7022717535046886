import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { perMethod } from "./per-method.ts";

describe("perMethod", () => {
  it("asks once per method and answers each method with its own value", () => {
    const asked: string[] = [];
    const nameOf = perMethod((method) => {
      asked.push(method.name);
      return `${method.parent.typeName}/${method.name}`;
    });
    const { getUser, listUsers } = UserService.method;
    assert.equal(nameOf(getUser), "user.v1.UserService/GetUser");
    assert.equal(nameOf(listUsers), "user.v1.UserService/ListUsers");
    assert.equal(nameOf(getUser), "user.v1.UserService/GetUser");
    assert.equal(nameOf(listUsers), "user.v1.UserService/ListUsers");
    assert.deepEqual(asked, ["GetUser", "ListUsers"]);
  });

  it("remembers false as an answer", () => {
    let calls = 0;
    const none = perMethod(() => {
      calls++;
      return false;
    });
    none(UserService.method.getUser);
    none(UserService.method.getUser);
    assert.equal(calls, 1);
  });
});
