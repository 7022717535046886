import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import {
  ConfigMap,
  type IEnvVar,
  type ISecretKeySelector,
  Secret,
  Service,
} from "kubernetes-models/v1";
import { loadConfig } from "./config.ts";
import { manifests, model } from "./testing/kubernetes.ts";

// deploy/kubernetes: the manifests are validated against Kubernetes' schemas, and what they
// configure against the server's configuration.

const models = [Deployment, Service, ConfigMap, Secret, HorizontalPodAutoscaler];

describe("deploy/kubernetes", () => {
  const all = manifests();
  const deployment = model(all, "deployment.yaml", Deployment);
  const pod = deployment.spec?.template.spec;
  const container = pod?.containers[0];
  const configMap = model(all, "configmap.yaml", ConfigMap);
  const secret = model(all, "secret.yaml", Secret);
  const service = model(all, "service.yaml", Service);

  it("has only manifests that are valid for their kind's schema", () => {
    for (const [file, manifest] of all) {
      if (file === "kustomization.yaml") continue;
      const Model = models.find((m) => m.is(manifest));
      assert.ok(Model, `${file}: no model for ${manifest.apiVersion} ${manifest.kind}`);
      assert.doesNotThrow(() => new Model(manifest as never).validate(), `${file} is invalid`);
    }
  });

  it("lists every manifest in kustomization.yaml", () => {
    const kustomization = all.get("kustomization.yaml");
    assert.equal(kustomization?.kind, "Kustomization");
    const resources = kustomization?.resources;
    assert.ok(Array.isArray(resources));
    const others = [...all.keys()].filter((f) => f !== "kustomization.yaml");
    assert.deepEqual([...resources].sort(), others.sort());
  });

  it("names the image the container test builds and runs, keel-server, in kustomization.yaml", () => {
    // container.test.ts tags deploy/Dockerfile's build `${image}:test` and runs it with this
    // Deployment's user, environment, volumes, limits and probes; kustomize replaces the name.
    assert.equal(container?.image, "keel-server");
    const images = all.get("kustomization.yaml")?.images as { name?: string }[] | undefined;
    assert.deepEqual(
      images?.map((i) => i.name),
      [container?.image],
    );
  });

  it("runs two replicas, scaled on CPU by the HPA from there", () => {
    const hpa = model(all, "hpa.yaml", HorizontalPodAutoscaler);
    assert.equal(deployment.spec?.replicas, 2);
    assert.deepEqual(hpa.spec?.scaleTargetRef, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: deployment.metadata?.name,
    });
    assert.equal(hpa.spec?.minReplicas, deployment.spec?.replicas);
    assert.ok((hpa.spec?.maxReplicas ?? 0) > 2);
    assert.deepEqual(
      hpa.spec?.metrics?.map((m) => [m.resource?.name, m.resource?.target.type]),
      [["cpu", "Utilization"]],
    );
    // Utilization is relative to the request: without one the HPA cannot compute it.
    assert.ok(container?.resources?.requests?.cpu);
    assert.ok(container?.resources?.limits?.memory);
  });

  it("probes readiness with gRPC health on 9090 and liveness with /healthz on the admin port", () => {
    assert.deepEqual(
      container?.ports?.map((p) => [p.name, p.containerPort]),
      [
        ["grpc", 9090],
        ["admin", 9091],
      ],
    );
    assert.deepEqual(container?.readinessProbe?.grpc, { port: 9090, service: "" });
    assert.deepEqual(container?.startupProbe?.grpc, { port: 9090 });
    assert.deepEqual(container?.livenessProbe?.httpGet, { path: "/healthz", port: "admin" });
    assert.equal(configMap.data?.KEEL_PORT, "9090");
    assert.equal(configMap.data?.KEEL_ADMIN_PORT, "9091");
  });

  it("takes settings from the ConfigMap and secrets by reference from the Secret", () => {
    assert.deepEqual(container?.envFrom, [{ configMapRef: { name: configMap.metadata?.name } }]);
    for (const name of ["KEEL_JWT_SECRET", "KEEL_API_KEY_SECRET", "KEEL_DATABASE_URL"]) {
      const variable: IEnvVar | undefined = container?.env?.find((e) => e.name === name);
      assert.equal(variable?.value, undefined, `${name} must not be written into the Deployment`);
      const ref: ISecretKeySelector | undefined = variable?.valueFrom?.secretKeyRef;
      assert.equal(ref?.name, secret.metadata?.name, name);
      assert.ok(Object.hasOwn(secret.stringData ?? {}, ref?.key ?? ""), `${name}: no such key`);
      assert.equal(configMap.data?.[name], undefined, `${name} belongs in the Secret`);
    }
  });

  it("makes a production configuration the server accepts, with API keys, and refuses the placeholder secrets", () => {
    const settings = { NODE_ENV: "production", ...configMap.data };
    // What the Deployment passes from the Secret, by the keys it names.
    const env: Record<string, string> = { ...settings };
    for (const variable of container?.env ?? []) {
      const key = variable.valueFrom?.secretKeyRef?.key;
      if (key !== undefined) env[variable.name] = secret.stringData?.[key] ?? "";
    }
    const real = {
      KEEL_JWT_SECRET: "a real secret of at least 32 characters",
      KEEL_API_KEY_SECRET: "another real secret of 32+ characters",
    };
    for (const name of Object.keys(real)) {
      assert.throws(
        () => loadConfig({ ...env, ...real, [name]: env[name] }),
        new RegExp(`${name}: the value must be at least 32 characters`),
      );
    }
    // In production API keys are off without their secret: the manifests must pass one.
    const config = loadConfig({ ...env, ...real });
    assert.deepEqual(
      config.auth.apiKeySecretBytes,
      new TextEncoder().encode(real.KEEL_API_KEY_SECRET),
    );
    // Stopping takes the shutdown delay plus the grace period; Kubernetes kills after its own.
    const stopMs =
      Number(configMap.data?.KEEL_SHUTDOWN_DELAY_MS ?? 0) +
      Number(configMap.data?.KEEL_SHUTDOWN_GRACE_MS ?? 10_000);
    assert.ok((pod?.terminationGracePeriodSeconds ?? 30) * 1000 >= stopMs + 10_000);
  });

  it("turns service links off: their KEEL_SERVER_* variables would stop the server", () => {
    assert.equal(pod?.enableServiceLinks, false);
    // What Kubernetes would inject for the Service (docker links style): unknown KEEL_* names.
    const prefix = (service.metadata?.name ?? "").toUpperCase().replaceAll("-", "_");
    const env = {
      ...configMap.data,
      KEEL_JWT_SECRET: "a real secret of at least 32 characters",
      [`${prefix}_SERVICE_HOST`]: "10.0.0.10",
      [`${prefix}_PORT`]: "tcp://10.0.0.10:9090",
    };
    assert.match(prefix, /^KEEL_/);
    assert.throws(() => loadConfig(env), /unknown setting/);
  });

  it("runs as a non-root user on a read-only root filesystem, writing only to emptyDirs", () => {
    assert.equal(pod?.securityContext?.runAsNonRoot, true);
    assert.ok((pod?.securityContext?.runAsUser ?? 0) > 0);
    assert.equal(container?.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(container?.securityContext?.allowPrivilegeEscalation, false);
    const dataDir = configMap.data?.KEEL_DATA_DIR;
    const mount = container?.volumeMounts?.find((m) => m.mountPath === dataDir);
    assert.ok(mount, `KEEL_DATA_DIR (${dataDir}) must be a mounted volume`);
    const volume = pod?.volumes?.find((v) => v.name === mount.name);
    assert.ok(volume?.emptyDir);
  });

  it("exposes the API port as HTTP/2 cleartext and the admin port on a ClusterIP Service", () => {
    assert.equal(service.spec?.type, "ClusterIP");
    assert.deepEqual(service.spec?.selector, deployment.spec?.selector.matchLabels);
    assert.deepEqual(
      service.spec?.ports?.map((p) => [p.name, p.port, p.targetPort, p.appProtocol]),
      [
        ["grpc", 9090, "grpc", "kubernetes.io/h2c"],
        ["admin", 9091, "admin", "http"],
      ],
    );
  });

  it("names every ready pod's address for client-side balancing on a headless Service", () => {
    const headless = model(all, "service-headless.yaml", Service);
    assert.equal(headless.spec?.clusterIP, "None");
    assert.deepEqual(headless.spec?.selector, deployment.spec?.selector.matchLabels);
    assert.notEqual(headless.spec?.publishNotReadyAddresses, true, "only ready pods are named");
    assert.deepEqual(
      headless.spec?.ports?.map((p) => [p.name, p.port, p.targetPort]),
      [["grpc", 9090, "grpc"]],
    );
  });
});
