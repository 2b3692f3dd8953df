import { register } from "node:module";

register("./cf-hooks.mjs", import.meta.url);
