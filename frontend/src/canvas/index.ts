export * from "./rle";
export * from "./brush";
export * from "./hittest";
export * from "./overlay";
export * from "./viewport";
export * from "./renderer";
export * from "./polygon";
