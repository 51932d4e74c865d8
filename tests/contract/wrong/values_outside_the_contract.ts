// Refused: values the contract does not allow, and a detail that lacks what it promises.
import type {RenditionCreated, RenditionFile} from "@kiray/imaging-contract";

export function large(detail: RenditionCreated): boolean {
  return detail.rendition === "large"; // tsc: TS2367
}

export function png(file: RenditionFile): boolean {
  return file.format === "png"; // tsc: TS2367
}

export const noFiles: RenditionCreated = {
  schemaVersion: 1,
  upload: {bucket: "b", key: "uploads/a.jpg", etag: "e", width: 1, height: 1, format: "jpeg"},
  rendition: "medium",
  files: [], // tsc: TS2322
};

export const misspelt: RenditionFile = {
  key: "renditions/medium/a.jpg/0000000000000000.jpg",
  format: "jpeg",
  content_type: "image/jpeg", // tsc: TS2561
  width: 1,
  height: 1,
  bytes: 1,
  scale: 1,
};
