"""lapor.intake"""
