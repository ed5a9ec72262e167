// seccomp.mjs: make and check ringlet's seccomp profile.
//
// manifests/seccomp/ringlet.json is "the runtime default plus io_uring": the
// default profile of containers-common (what podman and CRI-O apply; Docker's
// and containerd's are close relatives), with io_uring_setup, io_uring_enter
// and io_uring_register allowed. It is written in the plain OCI form
// (defaultAction, defaultErrnoRet, architectures, syscalls with names, action,
// errnoRet, args) that every runtime reads the same way: containerd parses
// Localhost profiles straight into the OCI struct and would silently ignore
// Docker's conditional "includes"/"excludes"/"archMap" keys, so those are
// resolved here, for a container with no capabilities (the pod drops ALL) on
// x86-64 or arm64 nodes.
//
//   node seccomp.mjs gen [/usr/share/containers/seccomp.json] > manifests/seccomp/ringlet.json
//   node seccomp.mjs spo manifests/seccomp/ringlet.json > manifests/components/seccomp-operator/seccompprofile.yaml
import { readFileSync } from "node:fs";

export const IO_URING = ["io_uring_enter", "io_uring_register", "io_uring_setup"];
const ARCHES = ["amd64", "x32", "x86", "arm64", "arm"];
const OCI_ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"];

function cleanArgs(args) {
    return (args || []).map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo || 0, op: a.op }));
}

// A Docker/containers-common profile, resolved for `caps` held and `arches`.
export function flatten(docker, caps = [], arches = ARCHES) {
    const held = new Set(caps);
    const out = { defaultAction: docker.defaultAction, architectures: OCI_ARCHES, syscalls: [] };
    if (docker.defaultErrnoRet !== undefined) out.defaultErrnoRet = docker.defaultErrnoRet;
    for (const s of docker.syscalls) {
        const inc = s.includes || {};
        const exc = s.excludes || {};
        if (inc.caps && inc.caps.length && !inc.caps.every((c) => held.has(c))) continue;
        if (exc.caps && exc.caps.length && exc.caps.some((c) => held.has(c))) continue;
        if (inc.arches && inc.arches.length && !inc.arches.some((a) => arches.includes(a))) continue;
        if (exc.arches && exc.arches.length && exc.arches.some((a) => arches.includes(a))) continue;
        const e = { names: [...s.names], action: s.action };
        if (s.errnoRet !== undefined && s.errnoRet !== null) e.errnoRet = s.errnoRet;
        const args = cleanArgs(s.args);
        if (args.length) e.args = args;
        out.syscalls.push(e);
    }
    for (const n of IO_URING) {
        if (out.syscalls.some((e) => e.names.includes(n))) throw new Error(`the base profile already names ${n}`);
    }
    out.syscalls.push({ names: [...IO_URING], action: "SCMP_ACT_ALLOW" });
    return out;
}

// The same profile as a Security Profiles Operator SeccompProfile.
// Cluster-scoped since SPO v0.9 (kustomize still stamps the overlay's
// namespace on it; the API server ignores a namespace on cluster objects).
export function toSeccompProfile(oci, name = "ringlet") {
    const spec = { defaultAction: oci.defaultAction, architectures: oci.architectures, syscalls: [] };
    for (const s of oci.syscalls) {
        const e = { action: s.action, names: s.names };
        if (s.errnoRet !== undefined) e.errnoRet = s.errnoRet;
        if (s.args) e.args = s.args;
        spec.syscalls.push(e);
    }
    return {
        apiVersion: "security-profiles-operator.x-k8s.io/v1beta1",
        kind: "SeccompProfile",
        metadata: { name },
        spec,
    };
}

// Problems with a profile meant for ringlet, as strings (empty: fine).
export function checkProfile(oci, where) {
    const errs = [];
    const allowed = new Set();
    if (oci.defaultAction !== "SCMP_ACT_ERRNO") errs.push(`${where}: defaultAction must be SCMP_ACT_ERRNO (an allow-list profile)`);
    for (const k of Object.keys(oci)) {
        if (!["defaultAction", "defaultErrnoRet", "architectures", "syscalls", "flags"].includes(k))
            errs.push(`${where}: key "${k}" is not in the OCI seccomp format (containerd would ignore it)`);
    }
    (oci.syscalls || []).forEach((s, i) => {
        for (const k of Object.keys(s)) {
            if (!["names", "action", "errnoRet", "args"].includes(k))
                errs.push(`${where}: syscalls[${i}].${k} is not in the OCI seccomp format (containerd would ignore it)`);
        }
        if (s.action === "SCMP_ACT_ALLOW" && !(s.args && s.args.length)) s.names.forEach((n) => allowed.add(n));
    });
    for (const n of IO_URING) if (!allowed.has(n)) errs.push(`${where}: ${n} is not allowed unconditionally`);
    return errs;
}

function yamlScalar(v) {
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    return /^[A-Za-z_][A-Za-z0-9_.\/-]*$/.test(v) && !/^(true|false|null|yes|no|on|off|y|n)$/i.test(v) ? v : JSON.stringify(v);
}

// Small, stable YAML for the SeccompProfile (block style, one name a line).
export function seccompProfileYaml(doc, header) {
    const L = [];
    if (header) L.push(...header.split("\n").map((l) => `# ${l}`.trimEnd()));
    L.push(`apiVersion: ${doc.apiVersion}`, `kind: ${doc.kind}`, "metadata:", `  name: ${doc.metadata.name}`);
    L.push("spec:", `  defaultAction: ${doc.spec.defaultAction}`, "  architectures:");
    for (const a of doc.spec.architectures) L.push(`  - ${a}`);
    L.push("  syscalls:");
    for (const s of doc.spec.syscalls) {
        L.push(`  - action: ${s.action}`);
        if (s.errnoRet !== undefined) L.push(`    errnoRet: ${s.errnoRet}`);
        if (s.args) {
            L.push("    args:");
            for (const a of s.args) L.push(`    - {index: ${a.index}, value: ${a.value}, valueTwo: ${a.valueTwo}, op: ${a.op}}`);
        }
        L.push("    names:");
        for (const n of s.names) L.push(`    - ${yamlScalar(n)}`);
    }
    return L.join("\n") + "\n";
}

export const SPO_HEADER = `Generated from manifests/seccomp/ringlet.json by
  node scripts/manifest-check/seccomp.mjs spo manifests/seccomp/ringlet.json
scripts/check-manifests fails when the two differ. Do not edit by hand.`;

if (import.meta.url === `file://${process.argv[1]}`) {
    const [cmd, file] = process.argv.slice(2);
    if (cmd === "gen") {
        const docker = JSON.parse(readFileSync(file || "/usr/share/containers/seccomp.json", "utf8"));
        process.stdout.write(JSON.stringify(flatten(docker), null, 2) + "\n");
    } else if (cmd === "spo") {
        const oci = JSON.parse(readFileSync(file || "manifests/seccomp/ringlet.json", "utf8"));
        process.stdout.write(seccompProfileYaml(toSeccompProfile(oci), SPO_HEADER));
    } else {
        process.stderr.write("usage: node seccomp.mjs gen [DEFAULT.json] | spo [ringlet.json]\n");
        process.exit(2);
    }
}
