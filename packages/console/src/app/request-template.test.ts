import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, createFileRegistry, type DescMessage, fromJson } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_any,
  file_google_protobuf_duration,
  file_google_protobuf_struct,
  file_google_protobuf_wrappers,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
} from "@bufbuild/protobuf/wkt";
import {
  GetUserRequestSchema,
  ListUsersRequestSchema,
  UpdateUserRequestSchema,
} from "@keel/gen/user/v1/user_pb";
import { services } from "./catalog.ts";
import { requestTemplate } from "./request-template.ts";

describe("requestTemplate", () => {
  it("writes 64-bit integers as strings and repeated fields as []", () => {
    assert.deepEqual(requestTemplate(GetUserRequestSchema), { userId: "0", fields: [] });
  });

  it("names enums by their first value", () => {
    assert.deepEqual(requestTemplate(ListUsersRequestSchema), {
      pageSize: 0,
      pageToken: "",
      status: "USER_STATUS_UNSPECIFIED",
    });
  });

  it("fills nested messages, maps and well-known types", () => {
    assert.deepEqual(requestTemplate(UpdateUserRequestSchema), {
      userId: "0",
      user: {
        userId: "0",
        username: "",
        email: "",
        status: "USER_STATUS_UNSPECIFIED",
        createdAt: "1970-01-01T00:00:00Z",
        updatedAt: "1970-01-01T00:00:00Z",
        tags: [],
        metadata: {},
      },
      updateMask: "",
    });
  });

  it("gives a valid request for every method of every service", () => {
    for (const service of services) {
      for (const method of service.methods) {
        const template = requestTemplate(method.input);
        assert.doesNotThrow(() => fromJson(method.input, template), `${method.name}`);
        const keys = Object.keys(template as object);
        for (const field of method.input.fields) {
          if (field.oneof === undefined) assert.ok(keys.includes(field.jsonName), field.name);
        }
      }
    }
  });

  it("covers every scalar, oneofs, recursion and the JSON-special well-known types", () => {
    const sample = sampleMessage();
    const template = requestTemplate(sample);
    assert.deepEqual(template, {
      ratio: 0,
      flag: false,
      blob: "",
      big: "0",
      small: 0,
      wait: "0s",
      extra: {},
      any: {},
      count: "0",
      nothing: null,
      child: {},
      name: "",
      nickname: "",
      children: {},
      value: null,
      list: [],
    });
    assert.doesNotThrow(() => fromJson(sample, template));
  });
});

/** A message with a field of each kind the generated services do not have. */
function sampleMessage(): DescMessage {
  const wkt = [
    file_google_protobuf_any,
    file_google_protobuf_duration,
    file_google_protobuf_struct,
    file_google_protobuf_wrappers,
  ];
  // One-word names: the JSON name, which compilers fill in, is the name itself.
  const field = (name: string, number: number, type: Type, extra: object = {}) => ({
    name,
    jsonName: name,
    number,
    type,
    label: Label.OPTIONAL,
    ...extra,
  });
  const message = (name: string, typeName: string, number: number, extra: object = {}) =>
    field(name, number, Type.MESSAGE, { typeName, ...extra });
  const file = create(FileDescriptorProtoSchema, {
    name: "test/v1/sample.proto",
    package: "test.v1",
    syntax: "proto3",
    dependency: wkt.map((f) => `${f.name}.proto`),
    messageType: [
      {
        name: "Sample",
        field: [
          field("ratio", 1, Type.DOUBLE),
          field("flag", 2, Type.BOOL),
          field("blob", 3, Type.BYTES),
          field("big", 4, Type.UINT64),
          field("small", 5, Type.SFIXED32),
          message("wait", ".google.protobuf.Duration", 6),
          message("extra", ".google.protobuf.Struct", 7),
          message("any", ".google.protobuf.Any", 8),
          message("count", ".google.protobuf.Int64Value", 9),
          field("nothing", 10, Type.ENUM, { typeName: ".google.protobuf.NullValue" }),
          message("child", ".test.v1.Sample", 11),
          field("name", 12, Type.STRING, { oneofIndex: 0 }),
          field("number", 13, Type.INT32, { oneofIndex: 0 }),
          field("nickname", 14, Type.STRING, { oneofIndex: 1, proto3Optional: true }),
          message("children", ".test.v1.Sample.ChildrenEntry", 15, { label: Label.REPEATED }),
          message("value", ".google.protobuf.Value", 16),
          message("list", ".google.protobuf.ListValue", 17),
        ],
        oneofDecl: [{ name: "choice" }, { name: "_nickname" }],
        nestedType: [
          {
            name: "ChildrenEntry",
            options: { mapEntry: true },
            field: [field("key", 1, Type.STRING), message("value", ".test.v1.Sample", 2)],
          },
        ],
      },
    ],
  });
  const registry = createFileRegistry(file, (name) => wkt.find((f) => `${f.name}.proto` === name));
  const desc = registry.getMessage("test.v1.Sample");
  assert.ok(desc);
  return desc;
}
