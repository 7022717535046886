import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadOptions, parseShapes, shapeName, wholeNumber } from "./plan.ts";

describe("wholeNumber", () => {
  it("reads a whole number of at least 1", () => {
    assert.equal(wholeNumber("rounds", "3"), 3);
  });

  it("refuses zero, fractions and words, naming the option", () => {
    for (const text of ["0", "1.5", "-2", "three", ""]) {
      assert.throws(() => wholeNumber("rounds", text), /--rounds must be a whole number ≥ 1/);
    }
  });
});

describe("loadOptions", () => {
  it("reads each option", () => {
    const options = loadOptions({
      rounds: "2",
      seconds: "4",
      "warm-up": "1",
      connections: "50",
      streams: "20",
    });
    assert.deepEqual(options, { rounds: 2, seconds: 4, warmUp: 1, connections: 50, streams: 20 });
  });

  it("names the option that is wrong", () => {
    const values = { rounds: "2", seconds: "4", "warm-up": "0", connections: "50", streams: "20" };
    assert.throws(() => loadOptions(values), /--warm-up/);
  });
});

describe("parseShapes", () => {
  it("reads connections × streams pairs in the order given", () => {
    assert.deepEqual(parseShapes("50x20,50x1"), [
      { connections: 50, streams: 20 },
      { connections: 50, streams: 1 },
    ]);
  });

  it("takes × as well as x, and spaces", () => {
    assert.deepEqual(parseShapes(" 10 × 5 "), [{ connections: 10, streams: 5 }]);
  });

  it("refuses a malformed shape, a zero and a shape given twice", () => {
    assert.throws(() => parseShapes("50"), /"50" is not CONNECTIONSxSTREAMS/);
    assert.throws(() => parseShapes("50x0"), /whole number ≥ 1/);
    assert.throws(() => parseShapes("50x1,50×1"), /50 × 1 is given twice/);
  });
});

describe("shapeName", () => {
  it("writes connections × streams", () => {
    assert.equal(shapeName({ connections: 50, streams: 1 }), "50 × 1");
  });
});
