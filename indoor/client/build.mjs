// `npm run build`: dist/ = the page's own files (src/) + MapLibre's ES modules and stylesheet, as
// published in the npm package. No bundler: the browser loads the modules as they are, and
// MapLibre finds its worker (maplibre-gl-worker.mjs) beside maplibre-gl.mjs on our own origin.
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const maplibre = join(here, "node_modules", "maplibre-gl", "dist");

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "vendor"), { recursive: true });
cpSync(join(here, "src"), dist, { recursive: true });
for (const name of ["maplibre-gl.mjs", "maplibre-gl.mjs.map", "maplibre-gl-worker.mjs", "maplibre-gl-worker.mjs.map", "maplibre-gl.css"]) {
  cpSync(join(maplibre, name), join(dist, "vendor", name));
}
console.log(`built ${dist}`);
