"""Video: reading and writing clips in bounded memory (`io`: PyAV), colouring them frame by frame with temporal
stabilisation (`temporal`: shot cuts, flow-guided chroma filtering), and their scores (`metrics`: Lai et al.'s warp
error). PyAV and OpenCV are the `video` extra."""
