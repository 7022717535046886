import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createTransport, createUserClient, type Protocol } from "@keel/clients";
import { Health, HealthCheckResponse_ServingStatus } from "@keel/gen/health/v1/health_pb";
import type { User } from "@keel/gen/user/v1/user_pb";
import { Deployment } from "kubernetes-models/apps/v1";
import { ConfigMap } from "kubernetes-models/v1";
import { healthcheck } from "./testing/dockerfile.ts";
import { manifests, model } from "./testing/kubernetes.ts";
import {
  buildImage,
  type Container,
  hostAddress,
  podman,
  podmanSkipReason,
  runContainer,
} from "./testing/podman.ts";

// deploy/Dockerfile built for real with podman (scripts/container/build-image.sh), then run the way
// deploy/kubernetes runs it: the same image name, user, environment, read-only root filesystem,
// volumes, resource limits, ports, probes and grace period, all read from the manifests here.

const all = manifests();
const pod = model(all, "deployment.yaml", Deployment).spec?.template.spec;
const spec = pod?.containers[0];
const settings = model(all, "configmap.yaml", ConfigMap).data ?? {};
const protocols: Protocol[] = ["grpc", "grpc-web", "connect"];
const password = "a container-tested password";
const run = `${process.pid}`;

describe("the image of deploy/Dockerfile, run as deploy/kubernetes runs it", {
  skip: podmanSkipReason(),
}, () => {
  const volume = `keel-test-data-${run}`;
  const env = {
    ...settings,
    KEEL_JWT_SECRET: randomBytes(48).toString("base64"),
    KEEL_API_KEY_SECRET: randomBytes(48).toString("base64"),
  };
  const started: Container[] = [];
  let image = "";

  before(async () => {
    image = await buildImage(`${spec?.image}:test`);
    await podman("volume", "create", volume);
  });
  after(async () => {
    for (const { name } of started) await podman("rm", "--force", "--ignore", name);
    await podman("volume", "rm", "--force", volume);
  });

  /** `podman run` with what deployment.yaml asks of the container runtime. */
  function start(): Container {
    const context = spec?.securityContext;
    const args = [
      `--user=${pod?.securityContext?.runAsUser}:${pod?.securityContext?.runAsGroup}`,
      ...(context?.readOnlyRootFilesystem ? ["--read-only", "--read-only-tmpfs=false"] : []),
      ...(context?.allowPrivilegeEscalation === false ? ["--security-opt=no-new-privileges"] : []),
      ...(context?.capabilities?.drop ?? []).map((c) => `--cap-drop=${c}`),
      `--memory=${spec?.resources?.limits?.memory?.toString().replace(/Mi$/, "m")}`,
      `--cpus=${spec?.resources?.limits?.cpu}`,
      // KEEL_DATA_DIR on a volume that outlives the container (an emptyDir outlives its pod's
      // container restarts too); the other emptyDirs are scratch space.
      ...(spec?.volumeMounts ?? []).map(({ mountPath }) =>
        mountPath === settings.KEEL_DATA_DIR
          ? `--volume=${volume}:${mountPath}`
          : `--tmpfs=${mountPath}`,
      ),
      ...(spec?.ports ?? []).map((p) => `--publish=127.0.0.1::${p.containerPort}`),
      ...Object.entries(env).map(([k, v]) => `--env=${k}=${v}`),
      image,
      ...(spec?.args ?? []),
    ];
    const container = runContainer(`keel-test-${run}-${started.length}`, args);
    started.push(container);
    return container;
  }

  /** SIGTERM, as the kubelet sends it; SIGKILL (exit code 137) only after the grace period. */
  async function stop(container: Container): Promise<number | null> {
    await podman("stop", `--time=${pod?.terminationGracePeriodSeconds}`, container.name);
    return (await container.exited).code;
  }

  const port = (name: string) => spec?.ports?.find((p) => p.name === name)?.containerPort ?? 0;
  const users = new Map<Protocol, { user: User; accessToken: string }>();

  it("is the image deployment.yaml names, for the user it runs as, with a HEALTHCHECK", async () => {
    const config = JSON.parse(await podman("image", "inspect", "--format={{json .Config}}", image));
    assert.equal(
      config.User,
      `${pod?.securityContext?.runAsUser}:${pod?.securityContext?.runAsGroup}`,
    );
    assert.deepEqual(config.Cmd, spec?.args);
    // The OCI format has no HEALTHCHECK: an image built without --format docker loses it.
    const check = JSON.parse(
      await podman("image", "inspect", "--format={{json .HealthCheck}}", image),
    );
    assert.deepEqual(check?.Test, ["CMD", ...healthcheck()], "the image lost its HEALTHCHECK");
  });

  it("starts read-only and answers the probes, /readyz and its own HEALTHCHECK", async () => {
    const container = start();
    await container.serving;
    const api = await hostAddress(container.name, port("grpc"));
    const admin = await hostAddress(container.name, port("admin"));
    // The kubelet's grpc probes: Check of the probe's service over HTTP/2 cleartext.
    const health = createClient(Health, createTransport({ baseUrl: `http://${api}` }));
    for (const probe of [spec?.startupProbe?.grpc, spec?.readinessProbe?.grpc]) {
      assert.equal(probe?.port, port("grpc"));
      const { status } = await health.check({ service: probe?.service ?? "" });
      assert.equal(status, HealthCheckResponse_ServingStatus.SERVING);
    }
    const liveness = spec?.livenessProbe?.httpGet;
    assert.equal(liveness?.port, "admin");
    for (const path of [liveness?.path, "/readyz"]) {
      assert.equal((await fetch(`http://${admin}${path}`)).status, 200, path);
    }
    // podman runs the image's HEALTHCHECK command inside the container: exit 0 is healthy.
    await podman("healthcheck", "run", container.name);
  });

  it("serves CreateUser, Login and GetUser over gRPC, gRPC-Web and Connect", async () => {
    const [container] = started;
    assert.ok(container);
    const baseUrl = `http://${await hostAddress(container.name, port("grpc"))}`;
    for (const protocol of protocols) {
      // gRPC-Web and Connect as browsers and proxies often send them: over HTTP/1.1.
      const httpVersion = protocol === "grpc" ? "2" : "1.1";
      const anonymous = createUserClient({ baseUrl, protocol, httpVersion });
      const username = `container-${protocol}`;
      const { user } = await anonymous.createUser({
        username,
        email: `${username}@example.com`,
        password,
      });
      assert.ok(user);
      const { accessToken } = await anonymous.login({ username, password });
      const caller = createUserClient({ baseUrl, protocol, httpVersion, token: accessToken });
      const { user: found } = await caller.getUser({ userId: user.userId });
      assert.deepEqual(found, user);
      users.set(protocol, { user, accessToken });
    }
  });

  it("writes its data as its own user, and stops on SIGTERM with exit code 0 in the grace period", async () => {
    const [container] = started;
    assert.ok(container);
    const mountpoint = await podman("volume", "inspect", "--format={{.Mountpoint}}", volume);
    const database = statSync(join(mountpoint, "keel.db"));
    assert.deepEqual(
      [database.uid, database.gid],
      [pod?.securityContext?.runAsUser, pod?.securityContext?.runAsGroup],
    );
    assert.equal(await stop(container), 0);
    const stopping = container.logs.find((l) => l.msg === "stopping");
    assert.equal(stopping?.signal, "SIGTERM");
    assert.equal(container.logs.at(-1)?.msg, "stopped");
  });

  it("keeps users and their sessions on the volume across a restart", async () => {
    const container = start();
    await container.serving;
    const baseUrl = `http://${await hostAddress(container.name, port("grpc"))}`;
    assert.equal(users.size, protocols.length, "the users of the test before");
    for (const [protocol, { user, accessToken }] of users) {
      const caller = createUserClient({ baseUrl, protocol, token: accessToken });
      const { user: found } = await caller.getUser({ userId: user.userId });
      assert.deepEqual(found, user);
    }
    const { accessToken } = await createUserClient({ baseUrl }).login({
      username: "container-grpc",
      password,
    });
    assert.ok(accessToken);
    assert.equal(await stop(container), 0);
  });
});
