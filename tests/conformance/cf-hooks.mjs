// Node resolve hook: map `cloudflare:workers` to the shim, and retry the extensionless
// relative imports inside @cloudflare/containers with `.js`.
export async function resolve(specifier, context, next) {
  if (specifier === "cloudflare:workers") {
    return { url: new URL("./cf-shim.mjs", import.meta.url).href, shortCircuit: true };
  }
  try {
    return await next(specifier, context);
  } catch (err) {
    if (err?.code === "ERR_MODULE_NOT_FOUND" && /^\.\.?\//.test(specifier) && !specifier.endsWith(".js")) {
      return next(`${specifier}.js`, context);
    }
    throw err;
  }
}
