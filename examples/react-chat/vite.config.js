import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// By default the app talks to EVI 360 on its own origin: Vite's dev server and `vite preview` forward
// /api/ to the EVI 360 server, so the browser needs no CORS and the bearer token goes to one origin
// only. (Built with VITE_EVI360_URL, it calls that origin directly instead: src/api.js.)
// changeOrigin: EVI 360 sees its own host, so the links it makes to its source pages point at it.
const target = process.env.EVI360_URL ?? "http://127.0.0.1:8000";
const proxy = { "/api/": { target, changeOrigin: true } };

export default defineConfig({
  plugins: [react()],
  server: { proxy },
  preview: { proxy },
});
