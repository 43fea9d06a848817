// EVI 360's origin when the built app is served from another one (VITE_EVI360_URL at build time,
// e.g. https://evi.example; EVI 360 must then list this app's origin in EVI360_CORS_ORIGINS).
// Empty, the default: EVI 360 is on this app's own origin (Vite's proxy, or one reverse proxy).
export const EVI360 = (import.meta.env.VITE_EVI360_URL ?? "").replace(/\/$/, "");
