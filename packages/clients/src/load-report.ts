import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { decodeBinaryHeader } from "@connectrpc/connect";

/** The trailer gRPC servers send a call's ORCA load report in (`xds.data.orca.v3.OrcaLoadReport`). */
export const loadReportTrailer = "endpoint-load-metrics-bin";

/** What weighted round robin reads of an ORCA load report. */
export interface LoadReport {
  /** `cpu_utilization` (field 1). */
  cpuUtilization: number;
  /** `rps_fractional` (field 6): calls answered per second. */
  rpsFractional: number;
  /** `eps` (field 7): calls answered with an error per second. */
  eps: number;
  /** `application_utilization` (field 9): preferred to the CPU's when set. */
  applicationUtilization: number;
}

/**
 * Reads the load report of a trailer value (base64 of the protobuf, as `-bin` headers are), or
 * undefined when it is not one. Other fields are skipped.
 */
export function readLoadReport(value: string): LoadReport | undefined {
  const report: LoadReport = {
    cpuUtilization: 0,
    rpsFractional: 0,
    eps: 0,
    applicationUtilization: 0,
  };
  try {
    const reader = new BinaryReader(decodeBinaryHeader(value));
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (wireType !== WireType.Bit64) {
        reader.skip(wireType, field);
        continue;
      }
      const number = reader.double();
      if (field === 1) report.cpuUtilization = number;
      else if (field === 6) report.rpsFractional = number;
      else if (field === 7) report.eps = number;
      else if (field === 9) report.applicationUtilization = number;
    }
  } catch {
    return undefined;
  }
  return report;
}
