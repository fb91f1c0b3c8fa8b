"""Input and output: video files and image sequences as frame sources, encoders and image folders
as frame sinks, still images, the one YUV <-> RGB conversion (``colour``), and atomic files."""
