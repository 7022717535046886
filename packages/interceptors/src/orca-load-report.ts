import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/**
 * The fields of ORCA's `xds.data.orca.v3.OrcaLoadReport` that keel reports (the message gRPC
 * servers send in the `endpoint-load-metrics-bin` trailer and weighted round robin reads).
 */
export interface OrcaLoadReport {
  /** CPU time used over wall time (1 is one core's worth; more with worker threads). Field 1. */
  cpuUtilization: number;
  /** Memory used over the limit, 0 to 1. Field 2. */
  memUtilization: number;
  /** Calls answered per second. Field 6 (`rps_fractional`). */
  rpsFractional: number;
  /** Calls answered with an error per second. Field 7 (`eps`). */
  eps: number;
  /** How busy the server is by its own measure, preferred by weighted round robin. Field 9. */
  applicationUtilization: number;
  /** Opaque named values. Field 8 (`named_metrics`, a map of string to double). */
  namedMetrics: Record<string, number>;
}

/**
 * The report in protobuf's binary form, as generated code would write it: fields in number
 * order, zeros left out. Written by hand because the `.proto` (shipped in @grpc/grpc-js) imports
 * protoc-gen-validate's, whose descriptors every client would then load.
 */
export function encodeOrcaLoadReport(report: OrcaLoadReport): Uint8Array {
  const writer = new BinaryWriter();
  const double = (field: number, value: number) => {
    if (value !== 0) writer.tag(field, WireType.Bit64).double(value);
  };
  double(1, report.cpuUtilization);
  double(2, report.memUtilization);
  double(6, report.rpsFractional);
  double(7, report.eps);
  for (const [name, value] of Object.entries(report.namedMetrics)) {
    writer.tag(8, WireType.LengthDelimited).fork();
    writer.tag(1, WireType.LengthDelimited).string(name);
    writer.tag(2, WireType.Bit64).double(value);
    writer.join();
  }
  double(9, report.applicationUtilization);
  return writer.finish();
}
