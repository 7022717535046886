import {
  createFileRegistry,
  createRegistry,
  type DescMessage,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  fromJson,
  type JsonObject,
} from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_field_mask,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
} from "@bufbuild/protobuf/wkt";
import { file_google_api_annotations, http } from "@keel/gen/google/api/annotations_pb";

/** A field of the test proto, in FileDescriptorProto's JSON form. */
function field(name: string, number: number, type: string, extra: JsonObject = {}): JsonObject {
  // protoc and buf always set json_name; descriptors written by hand must too.
  const jsonName = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return { name, number, type: `TYPE_${type}`, label: "LABEL_OPTIONAL", jsonName, ...extra };
}
const repeated = { label: "LABEL_REPEATED" };
const ref = (typeName: string) => ({ typeName });

/**
 * `test/v1/library.proto`, a proto with every kind of field and of HTTP rule, for tests that keel's
 * own protos do not cover: nested path variables, `**`, custom verbs, `body: "field"`,
 * `response_body`, additional bindings, maps, wrappers and scalars of every JSON form.
 */
const library = fromJson(
  FileDescriptorProtoSchema,
  {
    name: "test/v1/library.proto",
    package: "test.v1",
    syntax: "proto3",
    dependency: [
      "google/api/annotations.proto",
      "google/protobuf/field_mask.proto",
      "google/protobuf/timestamp.proto",
      "google/protobuf/wrappers.proto",
    ],
    enumType: [
      {
        name: "Genre",
        value: [
          { name: "GENRE_UNSPECIFIED", number: 0 },
          { name: "GENRE_FICTION", number: 1 },
          { name: "GENRE_POETRY", number: 2 },
        ],
      },
    ],
    messageType: [
      { name: "Address", field: [field("city", 1, "STRING")] },
      {
        name: "Author",
        field: [
          field("display_name", 1, "STRING"),
          field("address", 2, "MESSAGE", ref(".test.v1.Address")),
        ],
      },
      {
        name: "Book",
        field: [
          field("name", 1, "STRING"),
          field("pages", 2, "INT32"),
          field("id", 3, "INT64"),
          field("big", 4, "UINT64"),
          field("available", 5, "BOOL"),
          field("rating", 6, "DOUBLE"),
          field("weight", 7, "FLOAT"),
          field("cover", 8, "BYTES"),
          field("genre", 9, "ENUM", ref(".test.v1.Genre")),
          field("published_at", 10, "MESSAGE", ref(".google.protobuf.Timestamp")),
          field("tags", 11, "STRING", repeated),
          field("related_ids", 12, "INT64", repeated),
          field("genres", 13, "ENUM", { ...repeated, ...ref(".test.v1.Genre") }),
          field("author", 14, "MESSAGE", ref(".test.v1.Author")),
          field("labels", 15, "MESSAGE", { ...repeated, ...ref(".test.v1.Book.LabelsEntry") }),
          field("edition", 16, "MESSAGE", ref(".google.protobuf.Int32Value")),
          field("contributors", 17, "MESSAGE", { ...repeated, ...ref(".test.v1.Author") }),
          field("copies", 18, "UINT32"),
        ],
        nestedType: [
          {
            name: "LabelsEntry",
            field: [field("key", 1, "STRING"), field("value", 2, "STRING")],
            options: { mapEntry: true },
          },
        ],
      },
      { name: "GetBookRequest", field: [field("name", 1, "STRING")] },
      {
        name: "UpdateBookRequest",
        field: [
          field("book", 1, "MESSAGE", ref(".test.v1.Book")),
          field("update_mask", 2, "MESSAGE", ref(".google.protobuf.FieldMask")),
        ],
      },
      {
        name: "ListBooksRequest",
        field: [
          field("parent", 1, "STRING"),
          field("page_size", 2, "INT32"),
          field("filter", 3, "MESSAGE", ref(".test.v1.Book")),
        ],
      },
      {
        name: "ListBooksResponse",
        field: [
          field("books", 1, "MESSAGE", { ...repeated, ...ref(".test.v1.Book") }),
          field("next_page_token", 2, "STRING"),
        ],
      },
      {
        name: "MoveBookRequest",
        field: [field("name", 1, "STRING"), field("destination", 2, "STRING")],
      },
    ],
    service: [
      {
        name: "LibraryService",
        method: [
          {
            name: "GetBook",
            inputType: ".test.v1.GetBookRequest",
            outputType: ".test.v1.Book",
            options: {
              "[google.api.http]": {
                get: "/v1/{name=shelves/*/books/*}",
                additionalBindings: [{ get: "/v1/books/{name=**}" }],
              },
            },
          },
          {
            name: "UpdateBook",
            inputType: ".test.v1.UpdateBookRequest",
            outputType: ".test.v1.Book",
            options: {
              "[google.api.http]": { patch: "/v1/{book.name=shelves/*/books/*}", body: "book" },
            },
          },
          {
            name: "ListBooks",
            inputType: ".test.v1.ListBooksRequest",
            outputType: ".test.v1.ListBooksResponse",
            options: {
              "[google.api.http]": { get: "/v1/{parent=shelves/*}/books", responseBody: "books" },
            },
          },
          {
            name: "MoveBook",
            inputType: ".test.v1.MoveBookRequest",
            outputType: ".test.v1.Book",
            options: {
              "[google.api.http]": { post: "/v1/{name=shelves/*/books/*}:move", body: "*" },
            },
          },
          {
            name: "WatchBooks",
            inputType: ".test.v1.ListBooksRequest",
            outputType: ".test.v1.Book",
            serverStreaming: true,
            options: {
              "[google.api.http]": { custom: { kind: "SEARCH", path: "/v1/books:watch" } },
            },
          },
        ],
      },
    ],
    sourceCodeInfo: {
      location: [
        { path: [4, 2], span: [0, 0, 0], leadingComments: " A book on a shelf.\n" },
        { path: [4, 2, 2, 0], span: [0, 0, 0], leadingComments: " shelves/{shelf}/books/{book}\n" },
        { path: [5, 0, 2, 1], span: [0, 0, 0], trailingComments: " Made up.\n" },
        {
          path: [6, 0, 2, 0],
          span: [0, 0, 0],
          leadingComments:
            " GetBook returns a book.\n buf:lint:ignore RPC_RESPONSE_STANDARD_NAME\n",
        },
      ],
    },
  },
  { registry: createRegistry(http) },
);

const registry = createFileRegistry(library, (name) =>
  [
    file_google_api_annotations,
    file_google_protobuf_field_mask,
    file_google_protobuf_timestamp,
    file_google_protobuf_wrappers,
  ].find((f) => f.name === name.replace(/\.proto$/, "")),
);

function message(name: string): DescMessage {
  const desc = registry.getMessage(`test.v1.${name}`);
  if (desc === undefined) throw new Error(`no message test.v1.${name}`);
  return desc;
}

/** test.v1.LibraryService. */
export const LibraryService: DescService = (() => {
  const desc = registry.getService("test.v1.LibraryService");
  if (desc === undefined) throw new Error("no service test.v1.LibraryService");
  return desc;
})();

export const BookSchema = message("Book");
export const GetBookRequestSchema = message("GetBookRequest");
export const UpdateBookRequestSchema = message("UpdateBookRequest");
export const ListBooksRequestSchema = message("ListBooksRequest");
export const ListBooksResponseSchema = message("ListBooksResponse");
export const MoveBookRequestSchema = message("MoveBookRequest");

/** A unary method of LibraryService by name, typed for `router.rpc`. */
export function unaryMethod(name: string): DescMethodUnary {
  const method = LibraryService.methods.find((m) => m.name === name);
  if (method?.methodKind !== "unary") throw new Error(`no unary method ${name}`);
  return method as DescMethodUnary;
}

/** A server-streaming method of LibraryService by name, typed for `router.rpc`. */
export function serverStreamingMethod(name: string): DescMethodServerStreaming {
  const method = LibraryService.methods.find((m) => m.name === name);
  if (method?.methodKind !== "server_streaming") throw new Error(`no streaming method ${name}`);
  return method as DescMethodServerStreaming;
}
