// What Kiray's backend does with our events, against the package as it ships (tests/contract/test_types.py compiles
// it with tsc --strict). It imports by package name, as the backend does.
import type {
  KirayImagingEvent,
  RenditionCreated,
  RenditionFailed,
  RenditionFile,
  RenditionsDeleted,
} from "@kiray/imaging-contract";

const CDN = "https://photos.kiray.example/";

export type Photo = {
  upload: string;
  srcset: string;
  // The rendition's own size: what the page reserves so nothing shifts when the photo arrives.
  width: number;
  height: number;
  placeholder: string | undefined;
  fingerprint: string | undefined;
};

/** `…/9b2c.jpg 1x, …/9b2c@2x.jpg 2x`: one format's files, by the pixel density each is for. */
export function srcset(files: readonly RenditionFile[], format: RenditionFile["format"]): string {
  return files
    .filter((file) => file.format === format)
    .sort((a, b) => a.scale - b.scale)
    .map((file) => `${CDN}${encodeURI(file.key)} ${file.scale}x`)
    .join(", ");
}

function created(detail: RenditionCreated): Photo {
  // `files` is never empty, and its type says so: its first element needs no check.
  const base = detail.files.find((file) => file.scale === 1) ?? detail.files[0];
  return {
    upload: detail.upload.key,
    srcset: srcset(detail.files, base.format),
    width: base.width,
    height: base.height,
    placeholder: detail.placeholder?.thumbHash,
    fingerprint: detail.fingerprint?.algorithm === "phash-dct64" ? detail.fingerprint.hash : undefined,
  };
}

function failed(detail: RenditionFailed): string {
  const known = detail.error.class === "UnsupportedFormatError" || detail.error.class === "DecodeError";
  return known ? detail.error.message : `This photo could not be processed (${detail.error.class}).`;
}

function deleted(detail: RenditionsDeleted): readonly string[] {
  return detail.keys;
}

export type Outcome =
  | {kind: "ready"; rendition: RenditionCreated["rendition"]; photo: Photo}
  | {kind: "failed"; upload: string; message: string}
  | {kind: "gone"; upload: string; removed: readonly string[]};

export function handle(event: KirayImagingEvent): Outcome {
  switch (event["detail-type"]) {
    case "Rendition Created":
      return {kind: "ready", rendition: event.detail.rendition, photo: created(event.detail)};
    case "Rendition Failed":
      return {kind: "failed", upload: event.detail.upload.key, message: failed(event.detail)};
    case "Renditions Deleted":
      return {kind: "gone", upload: event.detail.upload.key, removed: deleted(event.detail)};
    default: {
      // Every detail-type is handled: a new one in the contract makes this line a compile error.
      const unhandled: never = event;
      throw new Error(`unhandled event ${JSON.stringify(unhandled)}`);
    }
  }
}
