import type {
  DescEnum,
  DescEnumValue,
  DescField,
  DescFile,
  DescMessage,
  DescMethod,
  DescService,
} from "@bufbuild/protobuf";

/** The descriptors that can carry a comment. */
export type Commented =
  | DescMessage
  | DescField
  | DescEnum
  | DescEnumValue
  | DescService
  | DescMethod;

const byFile = new WeakMap<DescFile, Map<string, string>>();

/**
 * The comment before a declaration (or after it, on the same line), from the file's source code
 * info; undefined when there is none. Descriptors embedded in generated code carry no source
 * code info; those built from `buf build` output do. Lint directives (`buf:lint:ignore …`) are
 * left out.
 */
export function commentOf(desc: Commented): string | undefined {
  const file = fileOf(desc);
  let comments = byFile.get(file);
  if (comments === undefined) {
    comments = new Map();
    for (const location of file.proto.sourceCodeInfo?.location ?? []) {
      const text = clean(location.leadingComments || location.trailingComments);
      if (text !== "") comments.set(location.path.join("."), text);
    }
    byFile.set(file, comments);
  }
  return comments.get(sourcePath(desc).join("."));
}

function fileOf(desc: Commented): DescFile {
  switch (desc.kind) {
    case "field":
      return desc.parent.file;
    case "enum_value":
      return desc.parent.file;
    case "rpc":
      return desc.parent.file;
    default:
      return desc.file;
  }
}

/** The path of a declaration in its file's source code info (see descriptor.proto). */
function sourcePath(desc: Commented): number[] {
  switch (desc.kind) {
    case "message":
      return desc.parent === undefined
        ? [4, desc.file.proto.messageType.indexOf(desc.proto)]
        : [...sourcePath(desc.parent), 3, desc.parent.proto.nestedType.indexOf(desc.proto)];
    case "field":
      return [...sourcePath(desc.parent), 2, desc.parent.proto.field.indexOf(desc.proto)];
    case "enum":
      return desc.parent === undefined
        ? [5, desc.file.proto.enumType.indexOf(desc.proto)]
        : [...sourcePath(desc.parent), 4, desc.parent.proto.enumType.indexOf(desc.proto)];
    case "enum_value":
      return [...sourcePath(desc.parent), 2, desc.parent.proto.value.indexOf(desc.proto)];
    case "service":
      return [6, desc.file.proto.service.indexOf(desc.proto)];
    case "rpc":
      return [...sourcePath(desc.parent), 2, desc.parent.proto.method.indexOf(desc.proto)];
  }
}

function clean(comment: string): string {
  return comment
    .split("\n")
    .map((line) => line.replace(/^ /, "").trimEnd())
    .filter((line) => !line.startsWith("buf:lint:ignore"))
    .join("\n")
    .trim();
}
