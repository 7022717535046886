import type { DescMethod } from "@bufbuild/protobuf";

/**
 * `compute` asked once per method and remembered: what an interceptor derives from a method's
 * descriptor (its name, its policy, its defaults) is worked out on its first call, not on every
 * call. `compute` must not return undefined.
 */
export function perMethod<T>(compute: (method: DescMethod) => T): (method: DescMethod) => T {
  const known = new WeakMap<DescMethod, T>();
  return (method) => {
    let value = known.get(method);
    if (value === undefined) {
      value = compute(method);
      known.set(method, value);
    }
    return value;
  };
}
