// Refused: "Renditions Deleted" is not handled, and the exhaustiveness check says so.
import type {KirayImagingEvent} from "@kiray/imaging-contract";

export function upload(event: KirayImagingEvent): string {
  switch (event["detail-type"]) {
    case "Rendition Created":
      return event.detail.upload.key;
    case "Rendition Failed":
      return event.detail.upload.key;
    default: {
      const unhandled: never = event; // tsc: TS2322
      return unhandled;
    }
  }
}
