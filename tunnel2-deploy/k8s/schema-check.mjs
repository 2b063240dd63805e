#!/usr/bin/env node
// Checks the manifests against the Kubernetes OpenAPI schemas that ship in the npm package kubernetes-models. It
// validates JSON schema with ajv, offline, without a cluster. kubeconform would do the same, but it is not packaged
// in the registries this project uses. Install the two packages once, outside the repository, then run the script:
//
//   npm install --prefix /tmp/k8s-schema --no-audit --no-fund kubernetes-models@5.1.0 js-yaml@4
//   node tunnel2-deploy/k8s/schema-check.mjs [FILE...]            # K8S_SCHEMA_PREFIX=/tmp/k8s-schema by default
//   kubectl kustomize tunnel2-deploy/k8s | node tunnel2-deploy/k8s/schema-check.mjs -
//
// Without FILE arguments, it checks every *.yaml in this folder except the patches and kustomization.yaml. It exits
// with 1 if any object fails. It checks types, enums and required fields. It does NOT report unknown fields (the
// compiled schemas allow additional properties), so a misspelled field passes here. validate.py checks for those.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const prefix = process.env.K8S_SCHEMA_PREFIX || "/tmp/k8s-schema";
const modules = path.join(prefix, "node_modules");
if (!fs.existsSync(path.join(modules, "kubernetes-models"))) {
  console.error(`kubernetes-models not found under ${modules}. Install it first:\n` +
    `  npm install --prefix ${prefix} --no-audit --no-fund kubernetes-models@5.1.0 js-yaml@4`);
  process.exit(2);
}
// Imported by file path: ESM ignores NODE_PATH, and the packages live outside the repository.
const yamlPkg = JSON.parse(fs.readFileSync(path.join(modules, "js-yaml", "package.json"), "utf8"));
const yamlMod = await import(pathToFileURL(path.join(modules, "js-yaml", yamlPkg.module || yamlPkg.main || "index.js")).href);
const yaml = yamlMod.loadAll ? yamlMod : yamlMod.default;

const groups = new Map();
async function modelFor(apiVersion, kind) {
  const dir = apiVersion.includes("/") ? apiVersion : `v1`;          // core group: kubernetes-models/v1
  const file = path.join(modules, "kubernetes-models", dir, "index.js");
  if (!fs.existsSync(file)) return null;
  if (!groups.has(dir)) groups.set(dir, await import(pathToFileURL(file).href));
  return groups.get(dir)[kind] || null;
}

const here = path.dirname(fileURLToPath(import.meta.url));
let inputs = process.argv.slice(2);
if (inputs.length === 0) {
  inputs = fs.readdirSync(here)
    .filter((n) => n.endsWith(".yaml") && !n.endsWith(".patch.yaml") && n !== "kustomization.yaml" && !n.startsWith("."))
    .sort()
    .map((n) => path.join(here, n));
}

let failed = 0;
let checked = 0;
for (const input of inputs) {
  const text = fs.readFileSync(input === "-" ? 0 : input, "utf8");
  const label = input === "-" ? "stdin" : path.basename(input);
  for (const doc of yaml.loadAll(text)) {
    if (!doc) continue;
    const where = `${label} ${doc.kind}/${doc.metadata && doc.metadata.name}`;
    const Model = await modelFor(doc.apiVersion || "", doc.kind || "");
    if (!Model) {
      console.log(`SKIP  ${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
      continue;
    }
    checked++;
    try {
      new Model(doc).validate();
      console.log(`ok    ${where}`);
    } catch (e) {
      failed++;
      console.log(`FAIL  ${where}: ${e.message}`);
    }
  }
}
console.log(`${checked} objects checked, ${failed} failed`);
process.exit(failed ? 1 : 0);
